import type { ErrorCode } from '@tresor/protocol';
import { crlCurrentAt, type Certificate, type Crl } from '../certs.js';
import type { CheckLog } from '../check-log.js';
import { chainValidityProblem, commonName, type ChainExamination } from './chain.js';
import { tcbClaims, type TdxTcbClaims } from './claims.js';
import type { CollateralExamination, IssuePeriod } from './collateral-examination.js';
import type { Parsed } from './collateral-schema.js';
import type { PckChainExamination } from './pck-chain.js';
import type { TdxQuote } from './quote.js';
import { combineMatches, ratePlatform, rateQuotingEnclave } from './tcb-status.js';

/**
 * The collateral checks (Intel DCAP quote verification with TCB info, QE identity and both CRLs),
 * in the order of the testdata's `computed.checks`: each signed document's issuer chain and
 * signature, their currency at `now`, the CRLs' signatures and currency, PCK and PCK CA revocation,
 * and finally whether the collateral rates this platform at all (`tcb_level_found`). The TCB
 * *status* (OutOfDate, Revoked, …) is not a hardware failure here: it is returned as claims for
 * the appraisal policy to judge.
 */

export interface CollateralCheckInputs {
  readonly examination: CollateralExamination;
  readonly quote: TdxQuote;
  readonly chain: PckChainExamination;
  readonly root: Certificate;
  readonly now: Date;
}

/** Records the collateral checks; returns the TCB claims when the TCB info and QE identity are readable. */
export async function recordCollateralChecks(
  log: CheckLog,
  inputs: CollateralCheckInputs,
): Promise<TdxTcbClaims | undefined> {
  const { examination: x, root, now } = inputs;
  recordSignerChain(log, 'tcb_info_chain', x.tcbInfoChain, root, now);
  log.check(
    'tcb_info_signature',
    x.tcbInfoSignatureValid,
    'ATTESTATION_COLLATERAL_INVALID',
    x.tcbInfoSignatureValid ? undefined : 'the TCB info text is not signed by the TCB signing certificate',
  );
  recordSignerChain(log, 'qe_identity_chain', x.qeIdentityChain, root, now);
  log.check(
    'qe_identity_signature',
    x.qeIdentitySignatureValid,
    'ATTESTATION_COLLATERAL_INVALID',
    x.qeIdentitySignatureValid
      ? undefined
      : 'the QE identity text is not signed by the TCB signing certificate',
  );
  recordCurrency(log, 'tcb_info_current', x.tcbInfoPeriod, 'TCB info', now);
  recordCurrency(log, 'qe_identity_current', x.qeIdentityPeriod, 'QE identity', now);
  await recordCrlChecks(log, inputs);
  return recordTcbLevel(log, inputs);
}

function recordSignerChain(
  log: CheckLog,
  name: string,
  chain: ChainExamination,
  root: Certificate,
  now: Date,
): void {
  if (chain.signatureProblem !== undefined) {
    log.fail(name, 'ATTESTATION_COLLATERAL_INVALID', chain.signatureProblem);
    return;
  }
  if (!chain.anchored) {
    log.fail(
      name,
      'ATTESTATION_ROOT_UNTRUSTED',
      'the collateral signing chain does not end in the Intel SGX Root CA',
    );
    return;
  }
  const validity = chainValidityProblem(chain.certificates, root, now);
  if (validity === undefined) log.pass(name);
  else log.fail(name, validity.code, validity.detail);
}

/** Intel PCS: a document is current from its issueDate up to its nextUpdate. */
function recordCurrency(
  log: CheckLog,
  name: string,
  period: Parsed<IssuePeriod>,
  what: string,
  now: Date,
): void {
  if (!period.ok) {
    log.fail(name, 'ATTESTATION_COLLATERAL_INVALID', period.problem);
    return;
  }
  const { issueDate, nextUpdate, issuedAt, dueAt } = period.value;
  if (now.getTime() > dueAt) {
    log.fail(name, 'ATTESTATION_COLLATERAL_EXPIRED', `the ${what} was due for renewal at ${nextUpdate}`);
  } else if (now.getTime() < issuedAt) {
    log.fail(
      name,
      'ATTESTATION_COLLATERAL_INVALID',
      `the ${what} was issued after the verification time (${issueDate})`,
    );
  } else {
    log.pass(name, `${issueDate} .. ${nextUpdate}`);
  }
}

async function recordCrlChecks(log: CheckLog, inputs: CollateralCheckInputs): Promise<void> {
  const { examination: x, chain, now } = inputs;
  const { rootCaCrl, pckCrl } = x.collateral;
  log.check(
    'root_crl_signature',
    x.rootCrlSignatureValid,
    'ATTESTATION_CRL_INVALID',
    x.rootCrlSignatureValid ? undefined : 'the root CA CRL is not signed by the Intel SGX Root CA',
  );

  const pck = chain.readable ? chain.pck : undefined;
  const pckCa = chain.readable ? chain.chain.certificates[1] : undefined;
  if (pckCa === undefined) {
    log.fail(
      'pck_crl_signature',
      'ATTESTATION_CERT_CHAIN_INVALID',
      'the quote carries no PCK CA certificate',
    );
  } else {
    const signed = await x.pckCrlSignedBy(pckCa);
    log.check(
      'pck_crl_signature',
      signed,
      'ATTESTATION_CRL_INVALID',
      signed ? undefined : `the PCK CRL is not signed by ${commonName(pckCa)}`,
    );
  }

  const stale = [rootCaCrl, pckCrl].find((crl) => !crlCurrentAt(crl, now));
  if (stale === undefined) log.pass('crls_current');
  else log.fail('crls_current', ...crlCurrencyFailure(stale, now));

  recordNotRevoked(log, 'pck_not_revoked', pck, (cert) => x.listedIn(pckCrl, cert));
  recordNotRevoked(log, 'pck_ca_not_revoked', pckCa, (cert) => x.listedIn(rootCaCrl, cert));
}

function crlCurrencyFailure(crl: Crl, now: Date): [ErrorCode, string] {
  const issuer = crl.issuer;
  if (crl.nextUpdate !== undefined && now.getTime() > crl.nextUpdate.getTime()) {
    return [
      'ATTESTATION_COLLATERAL_EXPIRED',
      `the CRL of ${issuer} was due for renewal at ${crl.nextUpdate.toISOString()}`,
    ];
  }
  return ['ATTESTATION_CRL_INVALID', `the CRL of ${issuer} was issued after the verification time`];
}

function recordNotRevoked(
  log: CheckLog,
  name: string,
  cert: Certificate | undefined,
  listed: (cert: Certificate) => boolean,
): void {
  if (cert === undefined) {
    log.fail(name, 'ATTESTATION_CERT_CHAIN_INVALID', 'the certificate to look up is missing from the quote');
    return;
  }
  const revoked = listed(cert);
  log.check(
    name,
    !revoked,
    'ATTESTATION_CERT_REVOKED',
    revoked ? `${commonName(cert)} is revoked` : undefined,
  );
}

function recordTcbLevel(log: CheckLog, inputs: CollateralCheckInputs): TdxTcbClaims | undefined {
  const { examination: x, quote, chain } = inputs;
  if (!x.tcbInfo.ok) {
    log.fail('tcb_level_found', 'ATTESTATION_COLLATERAL_INVALID', x.tcbInfo.problem);
    return undefined;
  }
  if (!x.qeIdentity.ok) {
    log.fail('tcb_level_found', 'ATTESTATION_COLLATERAL_INVALID', x.qeIdentity.problem);
    return undefined;
  }
  if (!chain.readable || chain.sgx === undefined) {
    log.fail('tcb_level_found', 'ATTESTATION_CERT_CHAIN_INVALID', 'the PCK certificate TCB is unreadable');
    return undefined;
  }
  const platform = ratePlatform(x.tcbInfo.value, chain.sgx, quote.body, x.hexFields);
  const qe = rateQuotingEnclave(x.qeIdentity.value, quote.qeReport, x.hexFields);
  const overall = combineMatches(platform, qe);
  const claims = tcbClaims(x.tcbInfo.value, platform, qe);
  if (overall.matched) log.pass('tcb_level_found', `TCB status ${claims.status}`);
  else log.fail('tcb_level_found', overall.code, overall.reason);
  return claims;
}
