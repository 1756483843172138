import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';
import { parseCertificates, sameCertificate, type Certificate } from '../certs.js';

/**
 * NVIDIA Device Identity CA: the root of every Hopper GPU's device certificate chain (FMC leaf →
 * BROM → GH100 Provisioner ICA → GH100 Identity → this CA). Public certificate, shipped by NVIDIA in
 * nvtrust (`guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/certs/verifier_device_root.pem`).
 * It is pinned here rather than read from a file, so a swapped root file cannot widen trust: a root
 * supplied by the caller is accepted only when it is byte-for-byte this certificate.
 */
const NVIDIA_DEVICE_IDENTITY_CA_PEM = `-----BEGIN CERTIFICATE-----
MIICCzCCAZCgAwIBAgIQLTZwscoQBBHB/sDoKgZbVDAKBggqhkjOPQQDAzA1MSIw
IAYDVQQDDBlOVklESUEgRGV2aWNlIElkZW50aXR5IENBMQ8wDQYDVQQKDAZOVklE
SUEwIBcNMjExMTA1MDAwMDAwWhgPOTk5OTEyMzEyMzU5NTlaMDUxIjAgBgNVBAMM
GU5WSURJQSBEZXZpY2UgSWRlbnRpdHkgQ0ExDzANBgNVBAoMBk5WSURJQTB2MBAG
ByqGSM49AgEGBSuBBAAiA2IABA5MFKM7+KViZljbQSlgfky/RRnEQScW9NDZF8SX
gAW96r6u/Ve8ZggtcYpPi2BS4VFu6KfEIrhN6FcHG7WP05W+oM+hxj7nyA1r1jkB
2Ry70YfThX3Ba1zOryOP+MJ9vaNjMGEwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8B
Af8EBAMCAQYwHQYDVR0OBBYEFFeF/4PyY8xlfWi3Olv0jUrL+0lfMB8GA1UdIwQY
MBaAFFeF/4PyY8xlfWi3Olv0jUrL+0lfMAoGCCqGSM49BAMDA2kAMGYCMQCPeFM3
TASsKQVaT+8S0sO9u97PVGCpE9d/I42IT7k3UUOLSR/qvJynVOD1vQKVXf0CMQC+
EY55WYoDBvs2wPAH1Gw4LbcwUN8QCff8bFmV4ZxjCRr4WXTLFHBKjbfneGSBWwA=
-----END CERTIFICATE-----
`;

/** SHA-256 of the pinned root's DER encoding (`openssl x509 -outform DER | sha256sum`). */
export const NVIDIA_DEVICE_IDENTITY_CA_SHA256 =
  '102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48';

let pinned: Certificate | undefined;

/**
 * The pinned NVIDIA Device Identity CA. Parsed once; refuses to hand out a certificate whose
 * fingerprint is not the pinned one, so an edit of the PEM above cannot pass unnoticed.
 */
export function nvidiaDeviceIdentityCa(): Certificate {
  if (pinned !== undefined) return pinned;
  const [root] = parseCertificates(new TextEncoder().encode(NVIDIA_DEVICE_IDENTITY_CA_PEM));
  if (root === undefined || certificateSha256(root) !== NVIDIA_DEVICE_IDENTITY_CA_SHA256) {
    throw new TresorError(
      'INTERNAL_ERROR',
      'the pinned NVIDIA Device Identity CA does not match its fingerprint',
    );
  }
  pinned = root;
  return root;
}

/** Lowercase hex SHA-256 of a certificate's DER encoding. */
export function certificateSha256(cert: Certificate): string {
  return bytesToHex(sha256(new Uint8Array(cert.rawData)));
}

/** True when `cert` is the pinned NVIDIA Device Identity CA, byte for byte. */
export function isNvidiaDeviceIdentityCa(cert: Certificate): boolean {
  return sameCertificate(cert, nvidiaDeviceIdentityCa());
}
