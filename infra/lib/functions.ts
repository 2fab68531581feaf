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
export type BucketName = 'attachments' | 'linkage' | 'exports' | 'audit';
/** Logical queue names (`MADOGUCHI_QUEUE_<NAME>_URL`); each has a `<name>-dlq`. */
export type QueueName = 'linkage-inbound';

export interface BucketAccess {
  readonly bucket: BucketName;
  /** Key prefixes (`inbound/`); the grant covers `<prefix>*` only. */
  readonly read?: string[];
  readonly write?: string[];
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
   * `none`: public.
   */
  readonly auth: 'citizen' | 'staff' | 'function' | 'none';
  /** Why a route without a gateway authorizer is fine (the cdk-nag acknowledgement's reason). */
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
}

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: 'forms',
    description: 'Form definitions: staff publish, citizens read (HTTP API).',
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
        { method: 'GET', path: '/v1/tenants/{tenant}/forms/{slug}', auth: 'none', why: 'published form definitions are public: citizens read them before signing in' },
        { method: 'PUT', path: '/v1/tenants/{tenant}/forms/{slug}', auth: 'staff' },
      ],
    },
    table: 'readwrite',
    verifiesTokens: true,
  },
  {
    name: 'linkage-inbound',
    description: 'Inbound linkage: registers core-system files dropped under inbound/ of the linkage bucket (SQS).',
    // Parses resident files streamed from S3: more memory buys CPU for the parser.
    memoryMiB: 1024,
    timeout: Duration.minutes(2),
    // Core-system batches arrive in bursts; a cap keeps one bulk drop from taking the
    // account's concurrency away from the citizen API and from flooding the table.
    reservedConcurrency: 5,
    trigger: { kind: 'sqs', queue: 'linkage-inbound', batchSize: 10, maxConcurrency: 2 },
    table: 'readwrite',
    buckets: [{ bucket: 'linkage', read: ['inbound/'] }],
  },
];

/** `linkage-inbound` → `LINKAGE_INBOUND` (resources.rs `env_name`). */
export function envName(logical: string): string {
  return logical.toUpperCase().replace(/-/g, '_');
}
