import { TresorError } from '@tresor/protocol';
import { KBS_PROTOCOL_VERSION } from './protocol.js';

/** Semantic Versioning 2.0.0 §2, §9, §10: MAJOR.MINOR.PATCH, optional -prerelease and +build. */
const SEMVER =
  /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

/**
 * Accepts exactly protocol version 0.4.0, as Trustee does (`VersionReq "=0.4.0"` on a parsed semver):
 * a pre-release such as 0.4.0-rc1 or any other version is refused, build metadata (0.4.0+abc) is
 * ignored by semver precedence (§10) and so accepted. Not semver at all is refused too.
 *
 * @throws TresorError KBS_PROTOCOL_VERSION_UNSUPPORTED
 */
export function requireProtocolVersion(version: string): void {
  const match = SEMVER.exec(version);
  const refuse = (why: string): TresorError =>
    new TresorError(
      'KBS_PROTOCOL_VERSION_UNSUPPORTED',
      `KBS Client Protocol Version Mismatch: expect =${KBS_PROTOCOL_VERSION} while the request is ${JSON.stringify(version.slice(0, 64))} (${why})`,
    );
  if (match === null) throw refuse('not a semantic version');
  const [, major, minor, patch, prerelease] = match;
  if (`${major}.${minor}.${patch}` !== KBS_PROTOCOL_VERSION || prerelease !== undefined) {
    throw refuse('a different version');
  }
}
