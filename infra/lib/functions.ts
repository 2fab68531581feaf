/**
 * The catalog of Lambda functions: one entry per crate in `functions/` (binary name =
 * directory name). A test compares this list with the directory, so a new function cannot
 * be forgotten.
 *
 * Each entry declares what the function may touch. The stack turns the declaration into
 * both the environment variables (`shared/aws/src/resources.rs`) and the IAM grants, so a
 * function is never told about a resource it may not use, nor allowed one it is not told about.
 */
import { Duration } from 'aws-cdk-lib';

/** Logical bucket names, as the functions read them (`MADOGUCHI_BUCKET_<NAME>`). */
export type BucketName = 'attachments' | 'linkage' | 'exports' | 'audit' | 'trust';
/** Logical queue names (`MADOGUCHI_QUEUE_<NAME>_URL`); each has a `<name>-dlq`. */
export type QueueName = 'linkage-inbound' | 'linkage-outbound' | 'attachments' | 'notify' | 'payment-events';
/** Every queue the stack creates (with its dead-letter queue and its depth alarm). */
export const QUEUES: readonly QueueName[] = ['linkage-inbound', 'linkage-outbound', 'attachments', 'notify', 'payment-events'];

/**
 * Key prefix of the attachments bucket that citizens upload into (presigned POST). Objects stay
 * there after the scan (`shared/applications/src/keys.rs`, `QUARANTINE_PREFIX`): whether one was
 * accepted is recorded in the table, refused ones are deleted.
 */
export const QUARANTINE_PREFIX = 'quarantine/';
/** Files staff attach to applications (`shared/applications/src/keys.rs`, `staff_attachment_key`). */
export const STAFF_FILES_PREFIX = 'staff/';
/** CSV exports in the exports bucket (`export_key`); the bucket expires them. */
export const EXPORTS_PREFIX = 'exports/';
/**
 * JPKI CRLs in the trust bucket, mirrored from J-LIS by an ops job; the esign function reads
 * them as `blob:crl/…` CRL locations (`functions/esign/src/trust.rs`).
 */
export const CRL_PREFIX = 'crl/';
/**
 * The JPKI CA certificates (PEM bundles) of the environment in the trust bucket, read as
 * `blob:anchors/…` trust anchors at start-up (`functions/esign/src/trust.rs`).
 */
export const ANCHORS_PREFIX = 'anchors/';

/**
 * Request header carrying the e-mail verification proof token on `citizen-or-proof` routes
 * (`functions/submissions/src/verify.rs`); the API's CORS configuration must allow it.
 */
export const EMAIL_PROOF_HEADER = 'x-email-proof';
/**
 * Request header carrying the status token of a signing session, with which the browser polls
 * `GET …/esign/sessions/{id}` (`functions/esign/src/sessions.rs`, `STATUS_TOKEN_HEADER`); the
 * API's CORS configuration must allow it.
 */
export const SESSION_TOKEN_HEADER = 'x-session-token';
/**
 * Request header carrying the secret token of a pre-application entry (`functions/qr`,
 * `X-Entry-Token`): the citizen's only credential for it; the API's CORS must allow it.
 */
export const ENTRY_TOKEN_HEADER = 'x-entry-token';

export interface BucketAccess {
  readonly bucket: BucketName;
  // Each list holds key prefixes (`inbound/`); each grant covers `<prefix>*` only.
  /** `s3:GetObject`, `s3:GetObjectVersion`. */
  readonly read?: string[];
  /** `s3:PutObject` (also what a presigned PUT or POST signed by the function's role needs). */
  readonly write?: string[];
  /** `s3:GetObjectTagging`, `s3:GetObjectVersionTagging` (GuardDuty's `GuardDutyMalwareScanStatus`). */
  readonly readTags?: string[];
  /** `s3:DeleteObject` (a delete marker in the versioned bucket, never a version). */
  readonly delete?: string[];
}

export type Trigger =
  /** HTTP API routes (`GET /v1/me`); `auth` picks the JWT authorizer of the route. */
  | { readonly kind: 'http'; readonly routes: HttpRoute[] }
  /** SQS event source with partial batch responses. */
  | { readonly kind: 'sqs'; readonly queue: QueueName; readonly batchSize: number; readonly maxConcurrency: number };

export interface HttpRoute {
  readonly method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  /**
   * `citizen` / `staff`: API Gateway checks a JWT of that pool before the function runs.
   * `function`: the route accepts tokens of both pools, which one HTTP API authorizer cannot
   * express (one issuer per authorizer); the function verifies the JWT itself (it always does).
   * `citizen-or-proof`: a citizen-pool JWT **or** an e-mail verification proof token that the
   * function itself issued (`POST …/email-verifications/{id}/confirm`), so that a citizen can
   * apply without an account. A gateway JWT authorizer would refuse the proof token (it is not
   * a Cognito JWT), so the gateway lets the request through and the function checks either
   * credential and refuses everything else with 401.
   * `none`: public.
   */
  readonly auth: 'citizen' | 'staff' | 'function' | 'citizen-or-proof' | 'none';
  /**
   * Why a route without a gateway authorizer is fine (the cdk-nag acknowledgement's reason):
   * required for `none`; for `function`, only when the route accepts other tokens than the two
   * pools' (the generic reason names those).
   */
  readonly why?: string;
}

export interface FunctionSpec {
  /** Directory under `functions/` and binary name. */
  readonly name: string;
  readonly description: string;
  readonly memoryMiB: number;
  readonly timeout: Duration;
  /** Reserved concurrency, where a downstream needs protection (omitted: none). */
  readonly reservedConcurrency?: number;
  readonly trigger: Trigger;
  /** Table access: `read` or `readwrite` (omitted: none). */
  readonly table?: 'read' | 'readwrite';
  readonly buckets?: BucketAccess[];
  /** Queues the function sends to. */
  readonly sendsTo?: QueueName[];
  /** KMS keys for application-level encryption (`data`: envelope keys, `mac`: blind index). */
  readonly keys?: Array<'data' | 'mac'>;
  /** Sends mail through SES from `mailFrom`. */
  readonly mail?: boolean;
  /** Verifies citizen/staff JWTs itself (sets the issuer variables). */
  readonly verifiesTokens?: boolean;
  /**
   * Decides on uploads by GuardDuty's scan tag: gets `MADOGUCHI_MALWARE_SCAN` = `guardduty`
   * (Malware Protection for S3 tags objects under `quarantine/` with `GuardDutyMalwareScanStatus`)
   * or `off` (the tenant switched it off with `malwareProtection: false`: no tag will ever come).
   */
  readonly readsMalwareScan?: boolean;
  /**
   * Builds links back to the API (the JPKI smartphone app's one-time link): gets
   * `MADOGUCHI_API_URL`, the public URL clients use (`https://<apiDomain>`).
   */
  readonly apiUrl?: boolean;
  /**
   * Verifies JPKI certificates and signatures: gets the tenant config's `jpki` trust settings
   * as `MADOGUCHI_JPKI_{SIGN,AUTH}_{ANCHORS,CRLS,OCSP_URL}` (only those configured).
   */
  readonly jpki?: boolean;
  /**
   * Talks to the card payment gateway (Stripe) with the tenant's credentials: may read the
   * Secrets Manager secrets `madoguchi/<stage>/payments/*` (one per tenant, created by the
   * operator, never by the stack: docs/deploy.md) and gets `MADOGUCHI_PAYMENT_GATEWAY`,
   * `MADOGUCHI_PAYMENT_SECRET_PREFIX` and `MADOGUCHI_PAYMENT_ENVIRONMENT`.
   */
  readonly payments?: true;
  /**
   * Also invoked by an EventBridge schedule (an expression such as `rate(5 minutes)`), on top
   * of its trigger; `why` becomes the rule's description.
   */
  readonly schedule?: { readonly expression: string; readonly why: string };
  /**
   * Stores the deadline of a payment at submission (`functions/submissions`): gets
   * `MADOGUCHI_PAYMENT_PENDING_MINUTES` only (no gateway access).
   */
  readonly setsPaymentDeadline?: true;
}

const staff = (method: HttpRoute['method'], path: string): HttpRoute => ({ method, path, auth: 'staff' });
/** Key prefix of the audit records' copies (`shared/audit`, `mirror_key`). */
export const AUDIT_PREFIX = 'audit/';
const STAFF = '/v1/tenants/{tenant}/staff';
const citizenOrProof = (method: HttpRoute['method'], path: string): HttpRoute => ({ method, path, auth: 'citizen-or-proof' });
const FORM = '/v1/tenants/{tenant}/forms/{slug}';
const MANAGE = '/v1/tenants/{tenant}/manage/forms';
const ESIGN = '/v1/tenants/{tenant}/esign/sessions';
const CARD = '/v1/tenants/{tenant}/auth/card';
const TENANT = '/v1/tenants/{tenant}';
const PAYMENT_METHODS = `${TENANT}/my/payment-methods`;
/**
 * Saved cards belong to an account: citizen-pool JWTs and My Number Card login tokens (issued by
 * esign, shared/cardlogin) are both accounts, and one gateway JWT authorizer trusts one issuer.
 */
const account = (method: HttpRoute['method'], path: string): HttpRoute => ({
  method, path, auth: 'function',
  why: 'saved cards belong to a citizen account: the route accepts citizen-pool JWTs and the My Number Card login tokens esign issues, which one gateway JWT authorizer cannot express (one issuer each); the function verifies either, refuses e-mail proof tokens and answers 401 otherwise',
});

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: 'forms',
    description: 'Form builder: staff draft, publish, close and archive form definitions; anyone reads the published one (HTTP API).',
    // Small JSON handlers over DynamoDB: 512 MiB gives the CPU share for a fast cold start
    // (Lambda CPU scales with memory) at a low price per request.
    memoryMiB: 512,
    // API Gateway waits at most 30 s; the design target is < 3 s, so fail fast well before.
    timeout: Duration.seconds(10),
    trigger: {
      kind: 'http',
      routes: [
        { method: 'GET', path: '/healthz', auth: 'none', why: 'liveness check for monitors; answers a constant, reads nothing' },
        { method: 'GET', path: '/v1/me', auth: 'function' },
        { method: 'GET', path: FORM, auth: 'none', why: 'published form definitions are public: citizens read them before signing in' },
        staff('GET', MANAGE),
        staff('POST', MANAGE),
        staff('GET', `${MANAGE}/{slug}`),
        staff('PUT', `${MANAGE}/{slug}`),
        staff('POST', `${MANAGE}/{slug}/publish`),
        staff('POST', `${MANAGE}/{slug}/close`),
        staff('POST', `${MANAGE}/{slug}/archive`),
        staff('GET', `${MANAGE}/{slug}/versions/{version}`),
      ],
    },
    table: 'readwrite',
    // Form creation, changes and publication are audited (hash chain in the table, copy in
    // the Object Lock bucket).
    buckets: [{ bucket: 'audit', write: [AUDIT_PREFIX] }],
    verifiesTokens: true,
  },
  {
    name: 'submissions',
    description: 'Citizen applications: e-mail verification, drafts, confirmation, submission, attachment uploads, history (HTTP API).',
    // The citizens' write path: validates a whole form, envelope-encrypts sensitive fields
    // (AES-256-GCM, blind indexes), writes a transaction, signs upload policies. All of it is
    // CPU in the function; 1024 MiB buys about twice the CPU share of 512 MiB for shorter
    // cold starts on deadline days (申請期限) and the < 100 ms aim, at about the same cost per
    // request since the duration shrinks with it.
    memoryMiB: 1024,
    // API Gateway waits at most 30 s; includes the synchronous one-time-code mail (SES).
    timeout: Duration.seconds(10),
    // Submissions on a form paid at submission get their payment deadline here.
    setsPaymentDeadline: true,
    trigger: {
      kind: 'http',
      routes: [
        {
          method: 'POST', path: `${FORM}/email-verifications`, auth: 'none',
          why: 'starts an e-mail verification for a citizen without an account: mails a one-time code; the function limits attempts per address and per form, and the stage throttle and the web ACL rate limit apply',
        },
        {
          method: 'POST', path: `${FORM}/email-verifications/{id}/confirm`, auth: 'none',
          why: 'exchanges the one-time code for a proof token; the code is the credential, checked by the function with a limited number of attempts before the verification is void',
        },
        citizenOrProof('GET', `${FORM}/draft`),
        citizenOrProof('PUT', `${FORM}/draft`),
        citizenOrProof('DELETE', `${FORM}/draft`),
        citizenOrProof('POST', `${FORM}/confirm`),
        citizenOrProof('POST', `${FORM}/applications`),
        citizenOrProof('POST', `${FORM}/attachments`),
        citizenOrProof('GET', `${FORM}/attachments/{id}`),
        citizenOrProof('POST', `${FORM}/signing-sessions`),
        citizenOrProof('GET', '/v1/tenants/{tenant}/my/applications'),
        citizenOrProof('GET', '/v1/tenants/{tenant}/my/applications/{id}'),
        citizenOrProof('POST', '/v1/tenants/{tenant}/my/applications/{id}/withdraw'),
        citizenOrProof('PUT', '/v1/tenants/{tenant}/my/applications/{id}/correction'),
      ],
    },
    table: 'readwrite',
    // Presigned POST uploads are signed with the function's own role: the role needs
    // s3:PutObject where the browser uploads, and nowhere else.
    buckets: [{ bucket: 'attachments', write: [QUARANTINE_PREFIX] }],
    sendsTo: ['notify'],
    keys: ['data', 'mac'],
    // The one-time code is mailed synchronously (the citizen is waiting for it).
    mail: true,
    verifiesTokens: true,
    // A signing session answers the JPKI app's one-time link (and its QR code) on the API.
    apiUrl: true,
  },
  {
    name: 'esign',
    description: 'JPKI e-signature: signing sessions for the smartphone app, reading the signing certificate\'s 基本4情報 for locked fields, My Number Card login (HTTP API).',
    // RSA verification of signatures, chains and CRLs, and parsing the JPKI CRLs (large; cached
    // per instance), are CPU in the function: 1024 MiB for the CPU share.
    memoryMiB: 1024,
    // API Gateway waits at most 30 s. A CRL fetch inside a request gives up after 20 s
    // (functions/esign/src/trust.rs) and the OCSP request after 5 s (the CRL decides), so a
    // cold instance fetching a CRL still answers in time.
    timeout: Duration.seconds(29),
    trigger: {
      kind: 'http',
      routes: [
        {
          method: 'POST', path: ESIGN, auth: 'none',
          why: 'opens a certificate-reading session for the JPKI app; it holds no personal data until the card signs, and the result goes only to the holder of the status token it returns',
        },
        {
          method: 'GET', path: `${ESIGN}/{id}`, auth: 'none',
          why: `the browser polls its session with the secret status token (header ${SESSION_TOKEN_HEADER}), checked by the function`,
        },
        {
          method: 'GET', path: `${ESIGN}/{id}/app`, auth: 'none',
          why: 'the JPKI smartphone app opens the one-time link; the token in the link is the credential, checked by the function',
        },
        {
          method: 'POST', path: `${ESIGN}/{id}/signature`, auth: 'none',
          why: 'the app posts the CMS signature with the one-time token of the link; the token is single use',
        },
        {
          method: 'POST', path: `${CARD}/challenges`, auth: 'none',
          why: 'issues a random single-use nonce for My Number Card login; no data',
        },
        {
          method: 'POST', path: `${CARD}/token`, auth: 'none',
          why: 'exchanges a card signature over a fresh challenge, checked against the JPKI CA and its CRL (or OCSP), for a citizen token',
        },
        {
          method: 'PUT', path: `${CARD}/link`, auth: 'function',
          why: 'accepts citizen-pool JWTs and the card-login tokens the function issues itself, which one gateway JWT authorizer cannot express (one issuer each); the function verifies either and answers 401 otherwise',
        },
      ],
    },
    table: 'readwrite',
    // The CRLs the ops job mirrors; read only, the function never writes there.
    buckets: [{ bucket: 'trust', read: [CRL_PREFIX, ANCHORS_PREFIX] }],
    // The card-login token key is a data key of the `data` KMS key (shared/cardlogin); no
    // blind index, so no MAC key.
    keys: ['data'],
    verifiesTokens: true,
    apiUrl: true,
    jpki: true,
  },
  {
    name: 'navigator',
    description: 'Life-event guide: which procedures apply (rules per tenant), progress, the procedure-guide code and printable page, access counts per event and channel, counter visits (HTTP API).',
    // Evaluates rules over a small JSON guide per request: light.
    memoryMiB: 512,
    timeout: Duration.seconds(10),
    trigger: {
      kind: 'http',
      routes: [
        { method: 'GET', path: `${TENANT}/guide`, auth: 'none', why: 'the published life-event guide (events and their names): public information for anyone planning a visit' },
        { method: 'POST', path: `${TENANT}/guide/events/{event}/start`, auth: 'none', why: 'counts one use of an event on a channel (an atomic counter, no data) and returns the first question; citizens need no account' },
        { method: 'POST', path: `${TENANT}/guide/events/{event}/evaluate`, auth: 'none', why: 'evaluates the answers given in the request against the public rules; nothing is stored' },
        { method: 'POST', path: `${TENANT}/guide/events/{event}/print`, auth: 'none', why: 'renders the result of the answers in the request as a printable page; nothing is stored' },
        staff('GET', `${STAFF}/guide`),
        staff('PUT', `${STAFF}/guide`),
        staff('GET', `${STAFF}/guide/counts`),
        staff('GET', `${STAFF}/guide/counts.csv`),
        staff('POST', `${STAFF}/guide/visits`),
        staff('GET', `${STAFF}/guide/visits/{id}`),
        staff('POST', `${STAFF}/guide/visits/{id}/ticks`),
      ],
    },
    table: 'readwrite',
    // A guide change is an audit record, copied to the Object Lock bucket.
    buckets: [{ bucket: 'audit', read: [AUDIT_PREFIX], write: [AUDIT_PREFIX] }],
    verifiesTokens: true,
  },
  {
    name: 'qr',
    description: 'Pre-application and its QR: citizens enter their household before visiting and get a sealed code (the entry is deleted at issue); the counter opens it, audited; QR key rotation (HTTP API).',
    // AES-GCM, DEFLATE and QR rendering of a few hundred bytes, and decoding a photo of a code
    // (a phone JPEG of a few MB) at the counter: the photo is the heavy part.
    memoryMiB: 1024,
    timeout: Duration.seconds(15),
    trigger: {
      kind: 'http',
      routes: [
        { method: 'POST', path: `${TENANT}/pre-applications`, auth: 'none', why: 'starts an empty pre-application and returns its secret entry token; citizens need no account (the point is not to write at the counter)' },
        { method: 'GET', path: `${TENANT}/pre-applications/{id}`, auth: 'none', why: `the entry is read with its secret token (header ${ENTRY_TOKEN_HEADER}), checked by the function; a wrong token is a 404` },
        { method: 'PUT', path: `${TENANT}/pre-applications/{id}`, auth: 'none', why: `the entry is written with its secret token (header ${ENTRY_TOKEN_HEADER}), checked by the function` },
        { method: 'POST', path: `${TENANT}/pre-applications/{id}/qr`, auth: 'none', why: `issues the sealed code once, with the entry's secret token (header ${ENTRY_TOKEN_HEADER}), and deletes the entry` },
        { method: 'GET', path: `${TENANT}/postal-codes/{code}`, auth: 'none', why: 'Japan Post postal-code data (public) for filling the address' },
        staff('POST', `${STAFF}/qr/open`),
        staff('GET', `${STAFF}/qr/keys`),
        staff('POST', `${STAFF}/qr/keys/rotate`),
        staff('POST', `${STAFF}/qr/keys/{kid}/retire`),
      ],
    },
    table: 'readwrite',
    // Every opening and key change is an audit record, copied to the Object Lock bucket.
    buckets: [{ bucket: 'audit', read: [AUDIT_PREFIX], write: [AUDIT_PREFIX] }],
    // The entry is sealed with a data key; the per-tenant QR keys are data keys too.
    keys: ['data'],
    verifiesTokens: true,
  },
  {
    name: 'staff',
    description: 'Staff console: application list and detail, status workflow, memos, files, 個人番号 reveal, CSV export, reports, departments and grants, audit log (HTTP API).',
    // Exports stream up to 200,000 rows through the CSV encoder and S3 multipart upload:
    // CPU-bound while it lasts, so the larger size for its CPU share.
    memoryMiB: 1024,
    // API Gateway waits 30 s at most; an export must finish inside it.
    timeout: Duration.seconds(29),
    trigger: {
      kind: 'http',
      routes: [
        staff('GET', `${STAFF}/applications`),
        staff('GET', `${STAFF}/applications/{id}`),
        staff('POST', `${STAFF}/applications/{id}/status`),
        staff('POST', `${STAFF}/applications/{id}/decrypt`),
        staff('GET', `${STAFF}/applications/{id}/memos`),
        staff('POST', `${STAFF}/applications/{id}/memos`),
        staff('POST', `${STAFF}/applications/{id}/staff-files`),
        staff('GET', `${STAFF}/applications/{id}/files/{file}`),
        staff('POST', `${STAFF}/applications/{id}/linkage-exports`),
        staff('GET', `${STAFF}/residents/{atena}`),
        staff('POST', `${STAFF}/residents/search`),
        staff('POST', `${STAFF}/exports`),
        staff('GET', `${STAFF}/reports`),
        staff('GET', `${STAFF}/reports/usage.csv`),
        staff('GET', `${STAFF}/reports/usage.svg`),
        staff('GET', `${STAFF}/org`),
        staff('PUT', `${STAFF}/org`),
        staff('GET', `${STAFF}/members`),
        staff('PUT', `${STAFF}/members/{sub}`),
        staff('GET', `${STAFF}/forms/{slug}/grants`),
        staff('PUT', `${STAFF}/forms/{slug}/grants`),
        staff('GET', `${STAFF}/audit`),
        staff('POST', `${STAFF}/audit/verify`),
      ],
    },
    table: 'readwrite',
    buckets: [
      // Citizens' files (download links) and staff files under staff/.
      { bucket: 'attachments', read: [QUARANTINE_PREFIX, STAFF_FILES_PREFIX], write: [STAFF_FILES_PREFIX] },
      { bucket: 'exports', read: [EXPORTS_PREFIX], write: [EXPORTS_PREFIX] },
      { bucket: 'audit', read: [AUDIT_PREFIX], write: [AUDIT_PREFIX] },
    ],
    // Mails about status changes; nudges linkage-outbound after one.
    sendsTo: ['notify', 'linkage-outbound'],
    // Reveals a 個人番号 on an explicit, audited request.
    keys: ['data', 'mac'],
    verifiesTokens: true,
  },
  {
    name: 'attachments',
    description: 'Attachment checks: size, type and GuardDuty scan result of each upload under quarantine/; refused uploads are deleted (SQS).',
    // Reads a few bytes and the tags of each object, writes one record: I/O-bound, small.
    memoryMiB: 512,
    timeout: Duration.seconds(30),
    // Uploads follow citizen traffic; at most 5 concurrent batches keeps a burst from taking the
    // table's or the account's capacity. No reservation needed: the event source caps it.
    trigger: { kind: 'sqs', queue: 'attachments', batchSize: 10, maxConcurrency: 5 },
    table: 'readwrite',
    buckets: [{ bucket: 'attachments', read: [QUARANTINE_PREFIX], readTags: [QUARANTINE_PREFIX], delete: [QUARANTINE_PREFIX] }],
    readsMalwareScan: true,
  },
  {
    name: 'notify',
    description: 'Notifications: mails citizens and staff about applications from the notify queue, once each (SQS).',
    // Renders a short mail and calls SES: I/O-bound and nobody waits on it, so the smallest
    // size that keeps the TLS handshake of a cold start short.
    memoryMiB: 256,
    timeout: Duration.seconds(30),
    // SES sends at most the account's sending rate (14 mails/s when production access is new):
    // two batches of ten at a time stay near it; SES throttling fails single messages, which
    // are retried. Reserved = maximum concurrency, so the event source is never throttled.
    reservedConcurrency: 2,
    trigger: { kind: 'sqs', queue: 'notify', batchSize: 10, maxConcurrency: 2 },
    // Reads the application, records each mail sent so that a redelivery does not mail twice.
    table: 'readwrite',
    mail: true,
  },
  {
    name: 'linkage-inbound',
    description: 'Inbound linkage: applies core-system files dropped under inbound/ of the linkage bucket to the resident store, exactly once, with reports under results/ (SQS).',
    // Parses resident files streamed from S3 and seals each 個人番号: more memory buys CPU.
    memoryMiB: 1024,
    // A 1,000,000-row 住民記録 file is one invocation (resumable from its checkpoint): Lambda's
    // maximum. The queue's visibility timeout follows (6 ×).
    timeout: Duration.minutes(15),
    // Core-system batches arrive in bursts; a cap keeps one bulk drop from taking the
    // account's concurrency away from the citizen API and from flooding the table. One file
    // per message: a batch of ten large files would not fit one invocation.
    reservedConcurrency: 5,
    trigger: { kind: 'sqs', queue: 'linkage-inbound', batchSize: 1, maxConcurrency: 2 },
    table: 'readwrite',
    // Files under inbound/, the 外字 conversion tables under config/; reports to results/.
    buckets: [{ bucket: 'linkage', read: ['inbound/', 'config/'], write: ['results/'] }],
    // 個人番号 of residents: sealed with the data key, blind index with the MAC key.
    keys: ['data', 'mac'],
  },
  {
    name: 'linkage-outbound',
    description: 'Outbound linkage: writes accepted applications as CSV files with manifests under outbound/ of the linkage bucket for core systems, each application once (SQS nudges and a schedule).',
    // Reads applications and writes a file of at most a few thousand rows: small.
    memoryMiB: 512,
    timeout: Duration.minutes(5),
    // Runs do not need to be alone (claims and batches are conditional writes), but two at a
    // time is plenty for a day's applications; reserved = maximum, so never throttled below.
    reservedConcurrency: 2,
    trigger: { kind: 'sqs', queue: 'linkage-outbound', batchSize: 10, maxConcurrency: 2 },
    schedule: {
      expression: 'rate(5 minutes)',
      why: 'linkage-outbound: picks up what a lost nudge or a crashed run left, and seals batches whose run died',
    },
    table: 'readwrite',
    buckets: [
      // The mapping and conversion tables under config/; files and manifests to outbound/.
      { bucket: 'linkage', read: ['config/'], write: ['outbound/'] },
      // Each file is recorded in the audit log before it is written.
      { bucket: 'audit', read: [AUDIT_PREFIX], write: [AUDIT_PREFIX] },
    ],
    // Opens each application's sealed 個人番号 for the core system's file.
    keys: ['data'],
  },
  {
    name: 'payments',
    description: 'Card payments: citizens see and pay the fee of an application (3-D Secure) and keep saved cards; staff see payments, set fees, export payments as CSV; the gateway\'s webhooks are verified and queued (HTTP API).',
    // Like staff: the CSV export of a form's payments streams through the encoder inside the
    // request, so the CPU share of 1024 MiB.
    memoryMiB: 1024,
    // API Gateway waits 30 s at most; gateway calls (Stripe) are retried inside the request.
    timeout: Duration.seconds(29),
    trigger: {
      kind: 'http',
      routes: [
        citizenOrProof('GET', `${TENANT}/my/applications/{id}/payment`),
        // Idempotency-Key header: a repeated POST never charges twice.
        citizenOrProof('POST', `${TENANT}/my/applications/{id}/payment`),
        account('GET', PAYMENT_METHODS),
        account('POST', `${PAYMENT_METHODS}/setup`),
        account('PUT', `${PAYMENT_METHODS}/{pm}/default`),
        account('DELETE', `${PAYMENT_METHODS}/{pm}`),
        staff('GET', `${STAFF}/applications/{id}/payment`),
        staff('PUT', `${STAFF}/applications/{id}/fee`),
        staff('GET', `${STAFF}/forms/{slug}/payments.csv`),
        {
          method: 'POST', path: `${TENANT}/payments/webhook`, auth: 'none',
          why: 'called by the card gateway (Stripe), which has no token of ours: the function verifies every request by its Stripe-Signature HMAC over the raw body with the tenant\'s webhook secret before storing and queueing it, and refuses anything else',
        },
      ],
    },
    table: 'readwrite',
    // Staff views of payments, fee changes and CSV exports are audit records, copied to the
    // Object Lock bucket (as the staff function's).
    buckets: [{ bucket: 'audit', read: [AUDIT_PREFIX], write: [AUDIT_PREFIX] }],
    // Verified webhook events and nudges to payment-events; receipts and failures to notify.
    sendsTo: ['payment-events', 'notify'],
    verifiesTokens: true,
    // 3-D Secure return URLs point back at the API.
    apiUrl: true,
    payments: true,
  },
  {
    name: 'payment-events',
    description: 'Payment events: applies verified gateway webhook events from the queue, cancels card payments left pending, reconciles payment records with the gateway (SQS and a schedule).',
    // Small JSON events and gateway calls: I/O-bound.
    memoryMiB: 512,
    // The reconciliation lists the gateway's recent payment intents per tenant, paging through
    // them with retries; the queue's visibility timeout follows (6 ×).
    timeout: Duration.minutes(5),
    // Webhook events are few; two batches at a time keep the gateway's API rate limit far away.
    // No reservation: the event source caps the queue's share, and a scheduled run is never
    // throttled by the queue's.
    trigger: { kind: 'sqs', queue: 'payment-events', batchSize: 10, maxConcurrency: 2 },
    schedule: {
      expression: 'rate(10 minutes)',
      why: 'Cancels card payments left pending past the configured time and reconciles our payment records with the gateway\'s (fixes what a lost webhook left behind).',
    },
    table: 'readwrite',
    // Receipts and payment failures are mailed by notify.
    sendsTo: ['notify'],
    payments: true,
  },
];

/** `linkage-inbound` → `LINKAGE_INBOUND` (resources.rs `env_name`). */
export function envName(logical: string): string {
  return logical.toUpperCase().replace(/-/g, '_');
}
