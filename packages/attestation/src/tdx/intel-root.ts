import { TresorError } from '@tresor/protocol';
import { equalBytes } from '@tresor/crypto';
import { parseCertificates, type Certificate } from '../certs.js';

/**
 * The Intel SGX Root CA, pinned: every PCK chain and every collateral signing chain must end in
 * exactly this certificate. It is Intel's public root as served at
 * https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.pem
 * (CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US; ECDSA P-256;
 * valid 2018-05-21T10:45:10Z .. 2049-12-31T23:59:59Z), byte-identical to the copies in
 * google/go-tdx-guest (verify/trusted_root.pem) and Phala-Network/dcap-qvl (src/TrustedRootCA.der).
 * SHA-256 fingerprint of the DER:
 * 44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3
 */
const INTEL_SGX_ROOT_CA_PEM = `-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----
`;

let pinned: Certificate | undefined;

/** The pinned Intel SGX Root CA (parsed once; certificates are immutable). */
export function intelSgxRootCa(): Certificate {
  pinned ??= parseCertificates(new TextEncoder().encode(INTEL_SGX_ROOT_CA_PEM), 'Intel SGX Root CA')[0]!;
  return pinned;
}

/**
 * True when `supplied` (PEM or DER, as `--intel-root-ca` takes it) is the pinned root. A caller may
 * pass the root it trusts, but never widen trust: anything else is refused (ATTESTATION_ROOT_UNTRUSTED).
 * Throws INPUT_MALFORMED when `supplied` is not a certificate at all.
 */
export function isPinnedIntelRoot(supplied: Uint8Array): boolean {
  const [first] = parseCertificates(supplied, 'Intel SGX Root CA');
  if (first === undefined) throw new TresorError('INPUT_MALFORMED', 'the Intel SGX Root CA file is empty');
  return equalBytes(new Uint8Array(first.rawData), new Uint8Array(intelSgxRootCa().rawData));
}
