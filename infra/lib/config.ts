/**
 * Parameters of one tenant deployment (one municipality, one stack).
 *
 * They come from a JSON file named on the command line:
 *   npx cdk deploy -c tenantConfig=config/272060.json
 * `config/example.json` lists every key; docs/deploy.md explains each one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** CloudFront requires its web ACLs and viewer certificates in this region (edge stack). */
export const EDGE_REGION = 'us-east-1';

/** An OpenID Connect identity provider offered on the citizen sign-in page (LINE, ...). */
export interface OidcProviderConfig {
  /** Provider name shown to Cognito and the SPA (`LINE`); letters, digits, `-`, `_`. */
  readonly name: string;
  /** OIDC issuer, e.g. `https://access.line.me`. */
  readonly issuerUrl: string;
  readonly clientId: string;
  /** Secrets Manager secret (name or ARN) holding the client secret as a plain string. */
  readonly clientSecretName: string;
  /** Scopes to request; default `openid email profile`. */
  readonly scopes?: string[];
}

export interface GoogleProviderConfig {
  readonly clientId: string;
  /** Secrets Manager secret (name or ARN) holding the client secret as a plain string. */
  readonly clientSecretName: string;
}

export interface HostedZoneConfig {
  /** Hosted zone id (`Z0123456789ABCDEFGHIJ`). */
  readonly id: string;
  /** Zone name (`city.example.lg.jp`); must contain apiDomain and apiOriginDomain. */
  readonly name: string;
}

/**
 * What the esign function trusts (functions/esign/src/trust.rs), per environment: the JPKI CA
 * certificates are never in the code. Two sets, one per certificate of the card: `sign`
 * (署名用電子証明書, signatures on applications) and `auth` (利用者証明用電子証明書, card login).
 * A set without anchors is off: its routes answer 503 `esign-not-configured`.
 */
export interface JpkiConfig {
  /**
   * CA certificates: `blob:anchors/<key>` (a PEM bundle in the trust bucket, put there by ops
   * per environment) or the PEM text itself (small: Lambda allows 4 KB of environment in all).
   */
  readonly signAnchors?: string;
  /** CRL locations: `https://…`, `http://…` or `blob:crl/<key>` (the trust bucket). */
  readonly signCrls?: string[];
  /** OCSP responder, `http(s)://…`; optional, the CRL decides when it does not answer. */
  readonly signOcspUrl?: string;
  readonly authAnchors?: string;
  readonly authCrls?: string[];
  readonly authOcspUrl?: string;
}

export interface TenantConfig {
  /** 全国地方公共団体コード, 6 digits with the check digit (`272060`). */
  readonly municipalityCode: string;
  /** Short environment name (`prod`, `stg`): part of resource names and aliases. */
  readonly stage: string;
  /** Region of the stack (`ap-northeast-1`, Tokyo). */
  readonly region: string;
  /** AWS account id; default: the CLI's current account. */
  readonly account?: string;
  /** Origin of the citizen SPA, for CORS and OAuth callbacks (`https://shinsei.city.example.lg.jp`). */
  readonly spaOrigin: string;
  /** Origin of the staff console (`https://madoguchi.city.example.lg.jp`). */
  readonly staffOrigin: string;
  /** Cognito hosted-UI domain prefixes (globally unique in the region). */
  readonly citizenAuthDomainPrefix: string;
  readonly staffAuthDomainPrefix: string;
  /** Sender address (`no-reply@city.example.lg.jp`); its domain becomes the SES identity. */
  readonly mailFrom: string;
  /**
   * Public host name of the API (`api.shinsei.city.example.lg.jp`): a CloudFront distribution
   * with a web ACL answers it; clients use `https://<apiDomain>`.
   */
  readonly apiDomain: string;
  /**
   * Host name of the API Gateway regional custom domain that CloudFront forwards to; the
   * `execute-api` endpoint is disabled. Default `origin.<apiDomain>`.
   */
  readonly apiOriginDomain?: string;
  /**
   * Route 53 public hosted zone holding both API names. When given, certificate validation
   * records and the alias records are created by the stacks; otherwise they are created by hand
   * (docs/deploy.md).
   */
  readonly hostedZone?: HostedZoneConfig;
  /** Social login through OIDC (LINE and others). */
  readonly oidcProviders?: OidcProviderConfig[];
  /** Social login through Google. */
  readonly google?: GoogleProviderConfig;
  /** Address subscribed to the alarm topic; more subscribers can be added in the console. */
  readonly alarmEmail?: string;
  /** API throttling (requests per second, burst) for the whole stage. */
  readonly apiRateLimit?: number;
  readonly apiBurstLimit?: number;
  /** WAF rate-based rule: requests per 5 minutes per client IP. */
  readonly wafRateLimitPer5Min?: number;
  /** Object Lock retention of the audit bucket, days (compliance mode, ≥ 365). */
  readonly auditRetentionDays?: number;
  /** Backup copy to a second region: ARN of a vault there (Osaka: `arn:aws:backup:ap-northeast-3:...`). */
  readonly backupCopyVaultArn?: string;
  /**
   * Reserved concurrency is on by default; a new account whose concurrency quota is still 10
   * cannot reserve any, so sandbox accounts may set this to false.
   */
  readonly reservedConcurrency?: boolean;
  /**
   * Origin-verify secret (`madoguchi/<code>/<stage>/origin-verify`): Secrets Manager version ids
   * to use. Omitted or empty: the current version (first deployment). During a rotation
   * (docs/deploy.md): `[new, old]`; CloudFront sends the first, the HTTP functions accept all.
   * Naming the versions is what makes CloudFormation resolve the references again.
   */
  readonly originVerifyVersions?: string[];
  /**
   * GuardDuty Malware Protection for S3 on `quarantine/` of the attachments bucket, tagging each
   * scanned object with `GuardDutyMalwareScanStatus`. Default true. Billed per GB scanned and per
   * object (docs/deploy.md); with false, nothing scans uploads and the attachments function
   * decides on size and type alone (`MADOGUCHI_MALWARE_SCAN=off`).
   */
  readonly malwareProtection?: boolean;
  /** JPKI trust of the esign function (CA certificates, CRLs, OCSP); omitted: e-signature and card login off. */
  readonly jpki?: JpkiConfig;
  /**
   * Minutes an application paid at submission may stay unpaid (支払待ち) before payment-events
   * cancels it: `submissions` stores the deadline (`MADOGUCHI_PAYMENT_PENDING_MINUTES`).
   * Default 30, 5 to 1440.
   */
  readonly paymentPendingMinutes?: number;
}

/** Defaults applied to every optional value, so the stack reads one complete object. */
export interface ResolvedTenantConfig extends TenantConfig {
  readonly oidcProviders: OidcProviderConfig[];
  readonly apiOriginDomain: string;
  readonly apiRateLimit: number;
  readonly apiBurstLimit: number;
  readonly wafRateLimitPer5Min: number;
  readonly auditRetentionDays: number;
  readonly reservedConcurrency: boolean;
  readonly originVerifyVersions: string[];
  readonly malwareProtection: boolean;
  readonly paymentPendingMinutes: number;
}

/** Bounds of `paymentPendingMinutes` (inclusive). */
export const PAYMENT_PENDING_MINUTES = { min: 5, max: 1440, default: 30 } as const;

/** Check digit of a 全国地方公共団体コード (JIS X 0402 style, modulus 11). */
export function municipalityCheckDigit(first5: string): number {
  let sum = 0;
  for (let i = 0; i < 5; i++) {
    sum += Number(first5[i]) * (6 - i);
  }
  const r = sum % 11;
  return (11 - r) % 10; // remainder 0 gives 1, remainder 1 gives 0 (shared/domain/src/tenant.rs)
}

function fail(msg: string): never {
  throw new Error(`tenant config: ${msg}`);
}

function origin(name: string, value: unknown): string {
  if (typeof value !== 'string' || !/^https:\/\/[a-z0-9.-]+(:\d+)?$/.test(value)) {
    fail(`${name} must be an https origin without a path (got ${JSON.stringify(value)})`);
  }
  return value;
}

const HOST = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$/;

function hostName(name: string, value: unknown): string {
  if (typeof value !== 'string' || !HOST.test(value)) {
    fail(`${name} must be a lowercase DNS host name (got ${JSON.stringify(value)})`);
  }
  return value;
}

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';
/**
 * PEM text in the environment, both sets together: Lambda refuses a function whose variables
 * exceed 4 KB in all, and the rest of esign's (ARNs, issuers, URLs) takes about 1.5 KB. Bundles
 * beyond this go in the trust bucket (`blob:anchors/…`).
 */
export const JPKI_PEM_ENV_BUDGET = 2048;

/**
 * CRLs over plain `http://` are fine: J-LIS publishes them over HTTP, and a CRL is signed by its
 * CA (the function verifies it against the anchors), so the transport adds nothing. `blob:`
 * keys must be under `crl/`, the only prefix of the trust bucket esign may read.
 */
const CRL_LOCATION = /^(?:https?:\/\/[^\s,]+|blob:crl\/[^\s,]+)$/;

function jpki(raw: unknown): void {
  if (raw === undefined) return;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('jpki must be an object');
  const cfg = raw as Record<string, unknown>;
  const sets = ['sign', 'auth'] as const;
  const known = sets.flatMap((set) => [`${set}Anchors`, `${set}Crls`, `${set}OcspUrl`]);
  // A misspelt key would leave a set silently unconfigured.
  for (const k of Object.keys(cfg)) {
    if (!known.includes(k)) fail(`jpki.${k} is not a parameter (${known.join(', ')})`);
  }
  let pem = 0;
  for (const set of sets) {
    const anchors = cfg[`${set}Anchors`];
    const crls = cfg[`${set}Crls`];
    const ocsp = cfg[`${set}OcspUrl`];
    if (anchors !== undefined) {
      const file = typeof anchors === 'string' && /^blob:anchors\/[^\s,]+$/.test(anchors);
      const text = typeof anchors === 'string' && anchors.startsWith(PEM_BEGIN) && anchors.trimEnd().endsWith(PEM_END);
      if (!file && !text) {
        fail(`jpki.${set}Anchors must be blob:anchors/<key> (a PEM bundle in the trust bucket) or PEM text starting with ${PEM_BEGIN}`);
      }
      if (text) pem += (anchors as string).length;
    }
    if (crls !== undefined && (!Array.isArray(crls) || crls.some((c) => typeof c !== 'string' || !CRL_LOCATION.test(c)))) {
      fail(`jpki.${set}Crls must list CRL locations: https://…, http://… or blob:crl/<key> (got ${JSON.stringify(crls)})`);
    }
    if (ocsp !== undefined && (typeof ocsp !== 'string' || !/^https?:\/\/[^\s,]+$/.test(ocsp))) {
      fail(`jpki.${set}OcspUrl must be an http(s) URL (got ${JSON.stringify(ocsp)})`);
    }
    const revocation = (Array.isArray(crls) && crls.length > 0) || ocsp !== undefined;
    if (anchors === undefined && (crls !== undefined || ocsp !== undefined)) {
      fail(`jpki.${set}Crls and jpki.${set}OcspUrl need jpki.${set}Anchors (without anchors the set is off)`);
    }
    // Revocation is required (docs/esign.md, Policy): without a source every signature would
    // end INDETERMINATE.
    if (anchors !== undefined && !revocation) {
      fail(`jpki.${set}Anchors needs jpki.${set}Crls or jpki.${set}OcspUrl (revocation is checked on every signature)`);
    }
  }
  if (pem > JPKI_PEM_ENV_BUDGET) {
    fail(`jpki anchors as PEM text take ${pem} characters, more than ${JPKI_PEM_ENV_BUDGET} fit in the function's environment (4 KB in all): use blob:anchors/<key>`);
  }
}

export function resolveConfig(raw: TenantConfig): ResolvedTenantConfig {
  const code = raw.municipalityCode;
  if (typeof code !== 'string' || !/^\d{6}$/.test(code)) {
    fail('municipalityCode must be the 6-digit 全国地方公共団体コード');
  }
  if (municipalityCheckDigit(code.slice(0, 5)) !== Number(code[5])) {
    fail(`municipalityCode ${code} has a wrong check digit`);
  }
  if (!/^[a-z][a-z0-9]{0,9}$/.test(raw.stage ?? '')) {
    fail('stage must be 1-10 lowercase letters or digits, starting with a letter');
  }
  if (!/^[a-z]{2}-[a-z]+-\d$/.test(raw.region ?? '')) {
    fail('region must be an AWS region name');
  }
  origin('spaOrigin', raw.spaOrigin);
  origin('staffOrigin', raw.staffOrigin);
  for (const p of ['citizenAuthDomainPrefix', 'staffAuthDomainPrefix'] as const) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(raw[p] ?? '') || /aws|amazon|cognito/.test(raw[p])) {
      fail(`${p} must be lowercase letters, digits and '-' and not contain aws, amazon or cognito`);
    }
  }
  const apiDomain = hostName('apiDomain', raw.apiDomain);
  const apiOriginDomain = hostName('apiOriginDomain', raw.apiOriginDomain ?? `origin.${apiDomain}`);
  if (apiOriginDomain === apiDomain) {
    fail('apiOriginDomain must differ from apiDomain (apiDomain points to CloudFront, apiOriginDomain to API Gateway)');
  }
  if (raw.hostedZone !== undefined) {
    if (!/^Z[A-Z0-9]{1,31}$/.test(raw.hostedZone.id ?? '')) fail('hostedZone.id must be a Route 53 hosted zone id (Z…)');
    const zone = hostName('hostedZone.name', raw.hostedZone.name);
    for (const [k, v] of [['apiDomain', apiDomain], ['apiOriginDomain', apiOriginDomain]] as const) {
      if (!v.endsWith(`.${zone}`)) fail(`${k} ${v} is not inside hostedZone.name ${zone}`);
    }
  }
  if (!/^[^@\s]+@[a-z0-9.-]+\.[a-z]+$/.test(raw.mailFrom ?? '')) {
    fail('mailFrom must be an e-mail address');
  }
  for (const p of raw.oidcProviders ?? []) {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(p.name) || p.name === 'Google') {
      fail(`OIDC provider name ${JSON.stringify(p.name)} is not allowed`);
    }
    if (!/^https:\/\//.test(p.issuerUrl) || !p.clientId || !p.clientSecretName) {
      fail(`OIDC provider ${p.name} needs issuerUrl (https), clientId and clientSecretName`);
    }
  }
  const auditRetentionDays = raw.auditRetentionDays ?? 400;
  if (!Number.isInteger(auditRetentionDays) || auditRetentionDays < 365) {
    fail('auditRetentionDays must be at least 365 (audit records are kept at least one year)');
  }
  const wafRateLimitPer5Min = raw.wafRateLimitPer5Min ?? 2000;
  if (wafRateLimitPer5Min < 10) {
    fail('wafRateLimitPer5Min must be at least 10 (a WAF limit)');
  }
  if (raw.backupCopyVaultArn !== undefined && !/^arn:aws:backup:[a-z0-9-]+:\d{12}:backup-vault:.+$/.test(raw.backupCopyVaultArn)) {
    fail('backupCopyVaultArn must be a backup vault ARN');
  }
  const originVerifyVersions = raw.originVerifyVersions ?? [];
  if (!Array.isArray(originVerifyVersions) || originVerifyVersions.length > 2
    || originVerifyVersions.some((v) => typeof v !== 'string' || !/^[A-Za-z0-9-]{32,64}$/.test(v))
    || new Set(originVerifyVersions).size !== originVerifyVersions.length) {
    fail('originVerifyVersions must list at most two distinct Secrets Manager version ids ([new, old] during a rotation)');
  }
  if (raw.malwareProtection !== undefined && typeof raw.malwareProtection !== 'boolean') {
    fail('malwareProtection must be true or false');
  }
  jpki(raw.jpki);
  const paymentPendingMinutes = raw.paymentPendingMinutes ?? PAYMENT_PENDING_MINUTES.default;
  if (!Number.isInteger(paymentPendingMinutes)
    || paymentPendingMinutes < PAYMENT_PENDING_MINUTES.min || paymentPendingMinutes > PAYMENT_PENDING_MINUTES.max) {
    fail(`paymentPendingMinutes must be a whole number of minutes from ${PAYMENT_PENDING_MINUTES.min} to ${PAYMENT_PENDING_MINUTES.max} (got ${JSON.stringify(raw.paymentPendingMinutes)})`);
  }
  return {
    ...raw,
    oidcProviders: raw.oidcProviders ?? [],
    apiOriginDomain,
    apiRateLimit: raw.apiRateLimit ?? 200,
    apiBurstLimit: raw.apiBurstLimit ?? 400,
    wafRateLimitPer5Min,
    auditRetentionDays,
    reservedConcurrency: raw.reservedConcurrency ?? true,
    originVerifyVersions,
    malwareProtection: raw.malwareProtection ?? true,
    paymentPendingMinutes,
  };
}

export function loadConfig(file: string): ResolvedTenantConfig {
  const text = fs.readFileSync(path.resolve(file), 'utf8');
  return resolveConfig(JSON.parse(text) as TenantConfig);
}
