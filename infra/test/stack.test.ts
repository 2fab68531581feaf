/**
 * The synthesized template of one tenant deployment, property by property (issue 4), plus the
 * cdk-nag packs. Synthesizes once, with bundling skipped (no Rust is compiled), into
 * build/cdk.out.test, where scripts/cfn-lint.mjs picks the template up.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { RustFunction } from 'cargo-lambda-cdk';

import { FUNCTIONS, QueueName } from '../lib/functions';
import { ACKNOWLEDGED } from '../lib/nag';
import { originVerifySecretName, SCHEDULES } from '../lib/madoguchi-stack';
import { exampleConfig, INFRA, REPO, resources, synth, Synth } from './helpers';

let s: Synth;
let t: Template;
let e: Template;
const cfg = exampleConfig();
const ref = (logicalId: string) => ({ Ref: logicalId });
const arn = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });
const idOf = (construct: { node: { defaultChild?: unknown } }) => s.stack.getLogicalId(construct.node.defaultChild as never);

before(() => {
  s = synth({ outdir: path.join(INFRA, 'build', 'cdk.out.test') });
  t = s.template;
  e = s.edgeTemplate;
});

describe('functions', () => {
  test('the catalog and functions/ list the same functions, binary name = directory name', () => {
    const dirs = fs.readdirSync(path.join(REPO, 'functions'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && fs.existsSync(path.join(REPO, 'functions', d.name, 'Cargo.toml')))
      .map((d) => d.name).sort();
    assert.deepEqual(FUNCTIONS.map((f) => f.name).sort(), dirs);
    for (const name of dirs) {
      const manifest = fs.readFileSync(path.join(REPO, 'functions', name, 'Cargo.toml'), 'utf8');
      assert.match(manifest, new RegExp(`\\[\\[bin\\]\\]\\s*\\nname = "${name}"`), `functions/${name} builds a binary named ${name}`);
      const members = fs.readFileSync(path.join(REPO, 'Cargo.toml'), 'utf8');
      assert.ok(members.includes(`"functions/${name}"`), `functions/${name} is a workspace member`);
    }
  });

  test('every function in functions/ is in the template, as an arm64 provided.al2023 RustFunction', () => {
    const fns = resources(t, 'AWS::Lambda::Function');
    for (const spec of FUNCTIONS) {
      assert.ok(s.stack.functions[spec.name] instanceof RustFunction, `${spec.name} is a RustFunction`);
      const found = Object.values(fns).filter((f) => String(f.Properties?.Description).startsWith(`Madoguchi ${spec.name}:`));
      assert.equal(found.length, 1, `${spec.name} in the template`);
      const p = found[0].Properties!;
      assert.equal(p.Runtime, 'provided.al2023');
      assert.deepEqual(p.Architectures, ['arm64']);
      assert.equal(p.Handler, 'bootstrap');
      assert.equal(p.MemorySize, spec.memoryMiB);
      assert.equal(p.Timeout, spec.timeout.toSeconds());
      assert.ok(p.Code.S3Bucket && p.Code.S3Key, 'code is an asset (bundled at deploy time)');
      assert.equal(p.LoggingConfig.LogFormat, 'JSON');
      assert.equal(p.LoggingConfig.ApplicationLogLevel, 'INFO');
      assert.deepEqual(p.TracingConfig, { Mode: 'Active' });
      if (spec.reservedConcurrency) assert.equal(p.ReservedConcurrentExecutions, spec.reservedConcurrency);
      else assert.equal(p.ReservedConcurrentExecutions, undefined);
    }
    // Nothing but our functions and CDK's bucket-notification handler.
    assert.equal(Object.keys(fns).length, FUNCTIONS.length + 1);
  });

  test('environment follows shared/aws/src/resources.rs and shared/http/src/auth.rs', () => {
    const env = (name: string) => t.toJSON().Resources[idOf(s.stack.functions[name])].Properties.Environment.Variables;
    const forms = env('forms');
    assert.deepEqual(Object.keys(forms).sort(), [
      'MADOGUCHI_BUCKET_AUDIT', 'MADOGUCHI_CITIZEN_AUDIENCE', 'MADOGUCHI_CITIZEN_ISSUER', 'MADOGUCHI_ORIGIN_VERIFY', 'MADOGUCHI_STAFF_AUDIENCE', 'MADOGUCHI_STAFF_ISSUER',
      'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
    assert.deepEqual(forms.MADOGUCHI_TABLE, ref(idOf(s.stack.table)));
    assert.equal(forms.MADOGUCHI_TENANT, '272060');
    assert.deepEqual(forms.MADOGUCHI_CITIZEN_ISSUER, { 'Fn::GetAtt': [idOf(s.stack.citizenPool), 'ProviderURL'] });
    assert.deepEqual(forms.MADOGUCHI_STAFF_ISSUER, { 'Fn::GetAtt': [idOf(s.stack.staffPool), 'ProviderURL'] });
    const inbound = env('linkage-inbound');
    assert.deepEqual(Object.keys(inbound).sort(), [
      'MADOGUCHI_BUCKET_LINKAGE', 'MADOGUCHI_DATA_KEY_ID', 'MADOGUCHI_MAC_KEY_ID', 'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
    assert.deepEqual(inbound.MADOGUCHI_BUCKET_LINKAGE, ref(idOf(s.stack.buckets.linkage)));

    const submissions = env('submissions');
    assert.deepEqual(Object.keys(submissions).sort(), [
      'MADOGUCHI_API_URL', 'MADOGUCHI_BUCKET_ATTACHMENTS', 'MADOGUCHI_CITIZEN_AUDIENCE', 'MADOGUCHI_CITIZEN_ISSUER', 'MADOGUCHI_DATA_KEY_ID', 'MADOGUCHI_MAC_KEY_ID',
      'MADOGUCHI_MAIL_FROM', 'MADOGUCHI_ORIGIN_VERIFY', 'MADOGUCHI_PAYMENT_PENDING_MINUTES', 'MADOGUCHI_QUEUE_NOTIFY_URL', 'MADOGUCHI_STAFF_AUDIENCE', 'MADOGUCHI_STAFF_ISSUER',
      'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
    assert.deepEqual(submissions.MADOGUCHI_BUCKET_ATTACHMENTS, ref(idOf(s.stack.buckets.attachments)));
    assert.deepEqual(submissions.MADOGUCHI_QUEUE_NOTIFY_URL, ref(idOf(s.stack.queues.notify.queue)));
    assert.deepEqual(submissions.MADOGUCHI_DATA_KEY_ID, arn(idOf(s.stack.keys.data)));
    assert.deepEqual(submissions.MADOGUCHI_MAC_KEY_ID, arn(idOf(s.stack.keys.mac)));
    assert.equal(submissions.MADOGUCHI_MAIL_FROM, cfg.mailFrom);
    assert.equal(submissions.MADOGUCHI_API_URL, `https://${cfg.apiDomain}`);

    const attachments = env('attachments');
    assert.deepEqual(Object.keys(attachments).sort(), [
      'MADOGUCHI_BUCKET_ATTACHMENTS', 'MADOGUCHI_MALWARE_SCAN', 'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG',
    ]);
    assert.equal(attachments.MADOGUCHI_MALWARE_SCAN, 'guardduty');

    const notify = env('notify');
    assert.deepEqual(Object.keys(notify).sort(), ['MADOGUCHI_MAIL_FROM', 'MADOGUCHI_TABLE', 'MADOGUCHI_TENANT', 'RUST_LOG']);
  });

  test('queue consumers: linkage-inbound, linkage-outbound, attachments, notify, payment-events, each on its own queue with partial batch responses', () => {
    // One core-system file per invocation: a large file takes the whole 15 minutes.
    const expected: Array<[string, QueueName, number, number]> = [
      ['linkage-inbound', 'linkage-inbound', 2, 1], ['linkage-outbound', 'linkage-outbound', 2, 10],
      ['attachments', 'attachments', 5, 10], ['notify', 'notify', 2, 10],
      ['payment-events', 'payment-events', 2, 10],
    ];
    t.resourceCountIs('AWS::Lambda::EventSourceMapping', expected.length);
    for (const [fn, queue, concurrency, batch] of expected) {
      t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: ref(idOf(s.stack.functions[fn])),
        EventSourceArn: arn(idOf(s.stack.queues[queue].queue)),
        BatchSize: batch,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: concurrency },
      });
    }
    // SES's sending rate: notify never runs more than two at a time, and is never throttled below that.
    const notify = t.toJSON().Resources[idOf(s.stack.functions.notify)].Properties;
    assert.equal(notify.ReservedConcurrentExecutions, 2);
  });

  test('function log groups keep 90 days; the API access log ≥ 1 year', () => {
    const groups = resources(t, 'AWS::Logs::LogGroup');
    const byId = (id: string) => groups[id]?.Properties?.RetentionInDays;
    for (const spec of FUNCTIONS) {
      const fn = t.toJSON().Resources[idOf(s.stack.functions[spec.name])];
      assert.equal(byId(fn.Properties.LoggingConfig.LogGroup.Ref), 90);
    }
    const api = Object.values(groups).filter((g) => g.Properties?.RetentionInDays >= 365);
    assert.equal(api.length, 1, 'the API access log group');
  });
});

describe('least privilege', () => {
  const statementsOf = (fnName: string) => {
    const roleId = s.stack.getLogicalId(s.stack.functions[fnName].role!.node.defaultChild as never);
    const policies = Object.values(resources(t, 'AWS::IAM::Policy'))
      .filter((p) => (p.Properties!.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(ref(roleId))));
    const role = t.toJSON().Resources[roleId];
    assert.equal(role.Properties.ManagedPolicyArns, undefined, `${fnName}: no managed policies`);
    return policies.flatMap((p) => p.Properties!.PolicyDocument.Statement as Array<Record<string, any>>);
  };
  const actions = (st: Record<string, any>) => [st.Action].flat() as string[];

  test('no wildcard actions; only X-Ray on "*"', () => {
    for (const spec of FUNCTIONS) {
      for (const st of statementsOf(spec.name)) {
        for (const a of actions(st)) assert.ok(!a.includes('*'), `${spec.name}: ${a}`);
        if (st.Resource === '*') assert.ok(actions(st).every((a) => a.startsWith('xray:')), `${spec.name}: ${actions(st)} on *`);
      }
    }
  });

  test('forms: the table and its key, and writing audit copies under audit/; no other bucket, queue or application key', () => {
    const st = statementsOf('forms');
    const all = st.flatMap(actions);
    assert.ok(all.includes('dynamodb:PutItem'));
    assert.ok(!all.some((a) => a.startsWith('sqs:') || a.startsWith('ses:')));
    assert.ok(!all.includes('kms:GenerateMac'));
    const s3 = st.filter((x) => actions(x).some((a) => a.startsWith('s3:')));
    assert.equal(s3.length, 1);
    assert.deepEqual(actions(s3[0]), ['s3:PutObject']);
    assert.deepEqual(s3[0].Resource, { 'Fn::Join': ['', [arn(idOf(s.stack.buckets.audit)), '/audit/*']] });
  });

  test('staff: reads citizens\' files, writes staff files, exports and audit copies, each under its prefix; deletes nothing', () => {
    const st = statementsOf('staff');
    const s3 = st.filter((x) => actions(x).some((a) => a.startsWith('s3:')));
    const writes = s3.filter((x) => actions(x).includes('s3:PutObject')).map((x) => JSON.stringify(x.Resource)).sort();
    assert.deepEqual(writes, [
      JSON.stringify({ 'Fn::Join': ['', [arn(idOf(s.stack.buckets.attachments)), '/staff/*']] }),
      JSON.stringify({ 'Fn::Join': ['', [arn(idOf(s.stack.buckets.audit)), '/audit/*']] }),
      JSON.stringify({ 'Fn::Join': ['', [arn(idOf(s.stack.buckets.exports)), '/exports/*']] }),
    ].sort());
    assert.ok(!st.flatMap(actions).includes('s3:DeleteObject'));
    assert.ok(st.flatMap(actions).includes('sqs:SendMessage'));
  });

  test('linkage-inbound: reads inbound/ and config/ of the linkage bucket, writes results/ only', () => {
    const st = statementsOf('linkage-inbound');
    const s3 = st.filter((x) => actions(x).some((a) => a.startsWith('s3:')));
    const bucket = arn(idOf(s.stack.buckets.linkage));
    const read = s3.find((x) => actions(x).includes('s3:GetObject'));
    assert.deepEqual(actions(read!).sort(), ['s3:GetObject', 's3:GetObjectVersion']);
    assert.deepEqual(read!.Resource, [
      { 'Fn::Join': ['', [bucket, '/config/*']] },
      { 'Fn::Join': ['', [bucket, '/inbound/*']] },
    ]);
    const write = s3.find((x) => actions(x).includes('s3:PutObject'));
    assert.deepEqual(write!.Resource, { 'Fn::Join': ['', [bucket, '/results/*']] });
    assert.ok(!s3.some((x) => actions(x).includes('s3:DeleteObject')), 'never deletes what core systems drop');
    const consume = st.find((x) => actions(x).includes('sqs:ReceiveMessage'));
    assert.deepEqual(consume?.Resource, arn(idOf(s.stack.queues['linkage-inbound'].queue)));
  });

  test('reads config/ of the linkage bucket, writes outbound/ only, opens sealed 個人番号', () => {
    const st = statementsOf('linkage-outbound');
    const s3 = st.filter((x) => actions(x).some((a) => a.startsWith('s3:')));
    const bucket = arn(idOf(s.stack.buckets.linkage));
    const reads = s3.filter((x) => actions(x).includes('s3:GetObject')).flatMap((x) => [x.Resource].flat());
    assert.ok(reads.some((r) => JSON.stringify(r) === JSON.stringify({ 'Fn::Join': ['', [bucket, '/config/*']] })));
    assert.ok(!reads.some((r) => JSON.stringify(r).includes('/inbound/')), 'never reads what core systems drop');
    const writes = s3.filter((x) => actions(x).includes('s3:PutObject')).flatMap((x) => [x.Resource].flat());
    assert.ok(writes.some((r) => JSON.stringify(r) === JSON.stringify({ 'Fn::Join': ['', [bucket, '/outbound/*']] })));
    assert.ok(!writes.some((r) => JSON.stringify(r).includes('/results/') || JSON.stringify(r).includes('/config/')));
    assert.ok(!s3.some((x) => actions(x).includes('s3:DeleteObject')));
    assert.ok(st.flatMap(actions).includes('kms:Decrypt'));
  });

  test('staff nudges it through its queue', () => {
    const st = statementsOf('staff');
    const send = st.filter((x) => actions(x).includes('sqs:SendMessage')).flatMap((x) => [x.Resource].flat());
    assert.ok(send.some((r) => JSON.stringify(r) === JSON.stringify(arn(idOf(s.stack.queues['linkage-outbound'].queue)))));
  });
});

describe('data', () => {
  test('table: pk/sk, gsi1, TTL, PITR, deletion protection, customer-managed key', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: [{
        IndexName: 'gsi1',
        KeySchema: [{ AttributeName: 'gsi1pk', KeyType: 'HASH' }, { AttributeName: 'gsi1sk', KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'ALL' },
      }],
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: arn(idOf(s.stack.keys.table)) },
    });
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });

  test('every bucket: public access blocked, TLS only, versioned, encrypted, lifecycle', () => {
    const buckets = resources(t, 'AWS::S3::Bucket');
    const policies = Object.values(resources(t, 'AWS::S3::BucketPolicy'));
    assert.equal(Object.keys(buckets).length, 6, 'attachments, linkage, exports, audit, trust, access logs');
    for (const [id, b] of Object.entries(buckets)) {
      const p = b.Properties!;
      assert.deepEqual(p.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true }, id);
      assert.deepEqual(p.VersioningConfiguration, { Status: 'Enabled' }, id);
      assert.ok(p.BucketEncryption.ServerSideEncryptionConfiguration.length === 1, id);
      assert.ok(p.LifecycleConfiguration.Rules.length >= 1, id);
      assert.equal(b.DeletionPolicy, 'Retain', id);
      const policy = policies.find((x) => JSON.stringify(x.Properties!.Bucket) === JSON.stringify(ref(id)));
      const deny = (policy?.Properties!.PolicyDocument.Statement as Array<Record<string, any>>)
        .find((st) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false');
      assert.ok(deny, `${id}: TLS-only policy`);
    }
    for (const name of ['attachments', 'linkage', 'exports', 'trust'] as const) {
      const p = buckets[idOf(s.stack.buckets[name])].Properties!;
      assert.equal(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'aws:kms');
      assert.deepEqual(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.KMSMasterKeyID, arn(idOf(s.stack.keys.storage)));
    }
    // Accepted uploads stay under quarantine/ (the table records the decision): nothing may
    // expire current objects there, only the noncurrent versions refused uploads leave behind.
    const rules = buckets[idOf(s.stack.buckets.attachments)].Properties!.LifecycleConfiguration.Rules as Array<Record<string, any>>;
    for (const r of rules) {
      if (r.Prefix === undefined || 'quarantine/'.startsWith(r.Prefix)) {
        assert.equal(r.ExpirationInDays, undefined, `${r.Id}: would expire accepted attachments`);
        assert.equal(r.ExpirationDate, undefined, `${r.Id}: would expire accepted attachments`);
        assert.equal(r.Transitions, undefined, `${r.Id}: attachments stay in STANDARD`);
      }
    }
    const quarantine = rules.find((r) => r.Prefix === 'quarantine/');
    assert.deepEqual(quarantine?.NoncurrentVersionExpiration, { NoncurrentDays: 1 }, 'refused uploads leave a noncurrent version for a day at most');
    assert.equal(quarantine?.ExpiredObjectDeleteMarker, true);
  });

  test('audit bucket: Object Lock in compliance mode for at least one year, its own key', () => {
    const p = t.toJSON().Resources[idOf(s.stack.buckets.audit)].Properties;
    assert.equal(p.ObjectLockEnabled, true);
    assert.equal(p.ObjectLockConfiguration.ObjectLockEnabled, 'Enabled');
    assert.equal(p.ObjectLockConfiguration.Rule.DefaultRetention.Mode, 'COMPLIANCE');
    assert.ok(p.ObjectLockConfiguration.Rule.DefaultRetention.Days >= 365);
    assert.deepEqual(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.KMSMasterKeyID, arn(idOf(s.stack.keys.audit)));
  });

  test('linkage bucket notifies its queue of objects created under inbound/', () => {
    t.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: ref(idOf(s.stack.buckets.linkage)),
      NotificationConfiguration: {
        QueueConfigurations: [{
          Events: ['s3:ObjectCreated:*'],
          Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'inbound/' }] } },
          QueueArn: arn(idOf(s.stack.queues['linkage-inbound'].queue)),
        }],
      },
    });
  });

  test('queues: encrypted, TLS only, dead-letter queue after 5 receives, DLQ keeps 14 days', () => {
    for (const [name, { queue, dlq }] of Object.entries(s.stack.queues)) {
      const q = t.toJSON().Resources[idOf(queue)].Properties;
      const d = t.toJSON().Resources[idOf(dlq)].Properties;
      assert.deepEqual(q.RedrivePolicy, { deadLetterTargetArn: arn(idOf(dlq)), maxReceiveCount: 5 }, name);
      assert.deepEqual(q.KmsMasterKeyId, arn(idOf(s.stack.keys.queue)));
      assert.deepEqual(d.KmsMasterKeyId, arn(idOf(s.stack.keys.queue)));
      assert.equal(d.MessageRetentionPeriod, 14 * 24 * 3600);
      const fn = FUNCTIONS.find((f) => f.trigger.kind === 'sqs' && f.trigger.queue === name);
      if (fn) assert.ok(q.VisibilityTimeout >= 6 * fn.timeout.toSeconds());
    }
    const policies = Object.values(resources(t, 'AWS::SQS::QueuePolicy'));
    for (const { queue, dlq } of Object.values(s.stack.queues)) {
      for (const q of [queue, dlq]) {
        const has = policies.some((p) => JSON.stringify(p.Properties!.Queues).includes(idOf(q))
          && (p.Properties!.PolicyDocument.Statement as Array<Record<string, any>>).some((st) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
        assert.ok(has, `${idOf(q)} TLS only`);
      }
    }
  });

  test('KMS: one key per purpose, symmetric keys rotate, the MAC key is HMAC_256', () => {
    const keys = resources(t, 'AWS::KMS::Key');
    assert.equal(Object.keys(keys).length, Object.keys(s.stack.keys).length);
    for (const [purpose, key] of Object.entries(s.stack.keys)) {
      const p = keys[idOf(key)].Properties!;
      if (purpose === 'mac') {
        assert.equal(p.KeySpec, 'HMAC_256');
        assert.equal(p.KeyUsage, 'GENERATE_VERIFY_MAC');
      } else {
        assert.equal(p.EnableKeyRotation, true, purpose);
      }
    }
    t.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/madoguchi-272060-prod-data' });
    t.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/madoguchi-272060-prod-mac' });
  });

  test('SES identity for the sender domain', () => {
    t.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'city.example.lg.jp' });
  });
});

describe('API and identity', () => {
  test('HTTP API: CORS for the SPA and the staff console, throttled $default stage with JSON access logs', () => {
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({ AllowOrigins: [cfg.spaOrigin, cfg.staffOrigin] }),
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: cfg.apiRateLimit, ThrottlingBurstLimit: cfg.apiBurstLimit },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"') },
    });
  });

  test('routes: every route of every HTTP function, JWT authorizers where the catalog says', () => {
    const routes = Object.values(resources(t, 'AWS::ApiGatewayV2::Route'));
    const authorizers = resources(t, 'AWS::ApiGatewayV2::Authorizer');
    const expected = FUNCTIONS.flatMap((f) => (f.trigger.kind === 'http' ? f.trigger.routes : []));
    assert.equal(routes.length, expected.length);
    for (const r of expected) {
      const route = routes.find((x) => x.Properties!.RouteKey === `${r.method} ${r.path}`);
      assert.ok(route, `${r.method} ${r.path}`);
      if (r.auth === 'citizen' || r.auth === 'staff') {
        assert.equal(route!.Properties!.AuthorizationType, 'JWT');
        const auth = authorizers[route!.Properties!.AuthorizerId.Ref].Properties!;
        assert.equal(auth.Name, r.auth);
      } else {
        assert.equal(route!.Properties!.AuthorizationType, 'NONE');
      }
    }
    const staff = Object.values(authorizers).find((a) => a.Properties!.Name === 'staff')!.Properties!;
    assert.deepEqual(staff.JwtConfiguration.Issuer, { 'Fn::GetAtt': [idOf(s.stack.staffPool), 'ProviderURL'] });
    assert.equal(staff.JwtConfiguration.Audience.length, 1);
    assert.deepEqual(staff.IdentitySource, ['$request.header.Authorization']);
  });

  test('citizen pool: email sign-up, password reset by email, LINE (OIDC) and Google', () => {
    const p = t.toJSON().Resources[idOf(s.stack.citizenPool)].Properties;
    assert.equal(p.AdminCreateUserConfig.AllowAdminCreateUserOnly, false);
    assert.deepEqual(p.UsernameAttributes, ['email']);
    assert.deepEqual(p.AutoVerifiedAttributes, ['email']);
    assert.deepEqual(p.AccountRecoverySetting.RecoveryMechanisms, [{ Name: 'verified_email', Priority: 1 }]);
    t.hasResourceProperties('AWS::Cognito::UserPoolIdentityProvider', {
      ProviderName: 'LINE', ProviderType: 'OIDC',
      ProviderDetails: Match.objectLike({ oidc_issuer: 'https://access.line.me', client_secret: Match.stringLikeRegexp('resolve:secretsmanager') }),
    });
    t.hasResourceProperties('AWS::Cognito::UserPoolIdentityProvider', { ProviderName: 'Google', ProviderType: 'Google' });
    t.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      UserPoolId: ref(idOf(s.stack.citizenPool)),
      SupportedIdentityProviders: ['COGNITO', 'LINE', 'Google'],
      CallbackURLs: [`${cfg.spaOrigin}/auth/callback`],
      GenerateSecret: false,
    });
  });

  test('staff pool: no self sign-up, MFA required, groups staff and admin', () => {
    const p = t.toJSON().Resources[idOf(s.stack.staffPool)].Properties;
    assert.equal(p.AdminCreateUserConfig.AllowAdminCreateUserOnly, true);
    assert.equal(p.MfaConfiguration, 'ON');
    assert.deepEqual(p.EnabledMfas, ['SOFTWARE_TOKEN_MFA']);
    for (const g of ['staff', 'admin']) {
      t.hasResourceProperties('AWS::Cognito::UserPoolGroup', { GroupName: g, UserPoolId: ref(idOf(s.stack.staffPool)) });
    }
  });

  test('WAF: managed rule groups and a rate-based rule, on both user pools', () => {
    t.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      Rules: Match.arrayWith([
        Match.objectLike({ Statement: { RateBasedStatement: Match.objectLike({ Limit: cfg.wafRateLimitPer5Min, AggregateKeyType: 'IP' }) } }),
        Match.objectLike({ Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesAmazonIpReputationList' } } }),
        Match.objectLike({ Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesCommonRuleSet' } } }),
        Match.objectLike({ Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesKnownBadInputsRuleSet' } } }),
      ]),
    });
    const assoc = Object.values(resources(t, 'AWS::WAFv2::WebACLAssociation')).map((a) => JSON.stringify(a.Properties!.ResourceArn));
    assert.ok(assoc.some((a) => a.includes(idOf(s.stack.citizenPool))));
    assert.ok(assoc.some((a) => a.includes(idOf(s.stack.staffPool))));
  });
});

describe('API front door: CloudFront + WAF (edge stack, us-east-1)', () => {
  const distribution = () => Object.values(resources(e, 'AWS::CloudFront::Distribution'));

  test('the edge stack lives in us-east-1 and deploys after the main stack', () => {
    assert.equal(s.edge.region, 'us-east-1');
    assert.ok(s.edge.dependencies.includes(s.stack));
  });

  test('web ACL of scope CLOUDFRONT: AWS managed rule groups and a per-IP rate-based rule', () => {
    e.resourceCountIs('AWS::WAFv2::WebACL', 1);
    e.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'CLOUDFRONT',
      DefaultAction: { Allow: {} },
      Rules: Match.arrayWith([
        Match.objectLike({ Action: { Block: {} }, Statement: { RateBasedStatement: Match.objectLike({ Limit: cfg.wafRateLimitPer5Min, AggregateKeyType: 'IP' }) } }),
        Match.objectLike({ OverrideAction: { None: {} }, Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesAmazonIpReputationList' } } }),
        Match.objectLike({ OverrideAction: { None: {} }, Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesCommonRuleSet' } } }),
        Match.objectLike({ OverrideAction: { None: {} }, Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesKnownBadInputsRuleSet' } } }),
      ]),
    });
  });

  test('distribution: the web ACL attached, apiDomain with its certificate, TLS 1.2+, HTTPS only, access logs', () => {
    const d = distribution();
    assert.equal(d.length, 1);
    const c = d[0].Properties!.DistributionConfig;
    const aclId = Object.keys(resources(e, 'AWS::WAFv2::WebACL'))[0];
    assert.deepEqual(c.WebACLId, arn(aclId));
    assert.deepEqual(c.Aliases, [cfg.apiDomain]);
    const certId = Object.keys(resources(e, 'AWS::CertificateManager::Certificate'))[0];
    assert.deepEqual(c.ViewerCertificate, { AcmCertificateArn: ref(certId), MinimumProtocolVersion: 'TLSv1.2_2021', SslSupportMethod: 'sni-only' });
    e.hasResourceProperties('AWS::CertificateManager::Certificate', { DomainName: cfg.apiDomain, ValidationMethod: 'DNS' });
    assert.equal(c.DefaultCacheBehavior.ViewerProtocolPolicy, 'https-only');
    const logBucket = Object.keys(resources(e, 'AWS::S3::Bucket'))[0];
    assert.deepEqual(c.Logging.Bucket, { 'Fn::GetAtt': [logBucket, 'RegionalDomainName'] });
  });

  test('the origin is the API custom domain, over TLS 1.2 only', () => {
    const c = distribution()[0].Properties!.DistributionConfig;
    assert.equal(c.Origins.length, 1);
    assert.equal(c.Origins[0].DomainName, cfg.apiOriginDomain);
    assert.equal(c.Origins[0].CustomOriginConfig.OriginProtocolPolicy, 'https-only');
    assert.deepEqual(c.Origins[0].CustomOriginConfig.OriginSSLProtocols, ['TLSv1.2']);
    t.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: cfg.apiOriginDomain,
      DomainNameConfigurations: [Match.objectLike({ EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' })],
    });
  });

  test('nothing cached; Authorization, every other viewer header and all query strings forwarded; every method', () => {
    const b = distribution()[0].Properties!.DistributionConfig.DefaultCacheBehavior;
    assert.equal(b.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad'); // Managed-CachingDisabled
    assert.equal(b.OriginRequestPolicyId, 'b689b0a8-53d0-40ab-baf2-68738e2966ac'); // Managed-AllViewerExceptHostHeader
    assert.deepEqual([...b.AllowedMethods].sort(), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
  });

  test('HTTP API: execute-api endpoint disabled, $default stage mapped to the custom domain', () => {
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP', DisableExecuteApiEndpoint: true });
    t.hasResourceProperties('AWS::ApiGatewayV2::ApiMapping', {
      ApiId: ref(idOf(s.stack.api)),
      DomainName: ref(s.stack.getLogicalId(s.stack.apiDomain.node.defaultChild as never)),
      Stage: '$default',
    });
    t.hasResourceProperties('AWS::CertificateManager::Certificate', { DomainName: cfg.apiOriginDomain, ValidationMethod: 'DNS' });
    t.hasOutput('ApiUrl', { Value: `https://${cfg.apiDomain}` });
  });

  test('without a hosted zone no DNS record is created; with one, validation and alias records are', () => {
    t.resourceCountIs('AWS::Route53::RecordSet', 0);
    e.resourceCountIs('AWS::Route53::RecordSet', 0);
    const zoned = synth({ config: exampleConfig({ hostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'shinsei.city.example.lg.jp' } }) });
    try {
      zoned.template.hasResourceProperties('AWS::CertificateManager::Certificate', {
        DomainName: cfg.apiOriginDomain,
        DomainValidationOptions: [{ DomainName: cfg.apiOriginDomain, HostedZoneId: 'Z0123456789ABCDEFGHIJ' }],
      });
      zoned.edgeTemplate.hasResourceProperties('AWS::CertificateManager::Certificate', {
        DomainName: cfg.apiDomain,
        DomainValidationOptions: [{ DomainName: cfg.apiDomain, HostedZoneId: 'Z0123456789ABCDEFGHIJ' }],
      });
      const distId = Object.keys(resources(zoned.edgeTemplate, 'AWS::CloudFront::Distribution'))[0];
      for (const type of ['A', 'AAAA']) {
        zoned.template.hasResourceProperties('AWS::Route53::RecordSet', {
          Name: `${cfg.apiOriginDomain}.`, Type: type, HostedZoneId: 'Z0123456789ABCDEFGHIJ',
          AliasTarget: Match.objectLike({ DNSName: { 'Fn::GetAtt': [zoned.stack.getLogicalId(zoned.stack.apiDomain.node.defaultChild as never), 'RegionalDomainName'] } }),
        });
        zoned.edgeTemplate.hasResourceProperties('AWS::Route53::RecordSet', {
          Name: `${cfg.apiDomain}.`, Type: type, HostedZoneId: 'Z0123456789ABCDEFGHIJ',
          AliasTarget: Match.objectLike({ DNSName: { 'Fn::GetAtt': [distId, 'DomainName'] } }),
        });
      }
    } finally {
      fs.rmSync(zoned.outdir, { recursive: true, force: true });
    }
  });
});

describe('origin verification: only CloudFront reaches the functions (x-origin-verify)', () => {
  const RESOLVE = /^\{\{resolve:secretsmanager:/;
  const secretId = () => idOf(s.stack.originVerifySecret);
  const originHeaders = (tpl: Template) =>
    Object.values(resources(tpl, 'AWS::CloudFront::Distribution'))[0].Properties!.DistributionConfig.Origins[0].OriginCustomHeaders;
  /** `{"Fn::Join": ["", [...]]}` → its parts; a plain string → itself. */
  const parts = (v: unknown): unknown[] => (typeof v === 'string' ? [v] : (v as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1]);

  test('a generated secret with a deterministic name and a replica in us-east-1', () => {
    t.resourceCountIs('AWS::SecretsManager::Secret', 1);
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: originVerifySecretName(cfg),
      GenerateSecretString: Match.objectLike({ PasswordLength: 48, ExcludePunctuation: true }),
      ReplicaRegions: [{ Region: 'us-east-1' }],
    });
    assert.equal(originVerifySecretName(cfg), 'madoguchi/272060/prod/origin-verify');
    t.hasOutput('OriginVerifySecretName', { Value: 'madoguchi/272060/prod/origin-verify' });
  });

  test('HTTP functions get MADOGUCHI_ORIGIN_VERIFY as a dynamic reference to the secret; others do not', () => {
    const res = t.toJSON().Resources;
    for (const spec of FUNCTIONS) {
      const env = res[idOf(s.stack.functions[spec.name])].Properties.Environment.Variables;
      if (spec.trigger.kind !== 'http') {
        assert.equal(env.MADOGUCHI_ORIGIN_VERIFY, undefined, spec.name);
        continue;
      }
      assert.deepEqual(env.MADOGUCHI_ORIGIN_VERIFY, {
        'Fn::Join': ['', ['{{resolve:secretsmanager:', ref(secretId()), ':SecretString:::}}']],
      }, spec.name);
    }
  });

  test('the distribution sends x-origin-verify, read from the us-east-1 replica by name at deploy time', () => {
    const headers = originHeaders(e);
    assert.equal(headers.length, 1);
    assert.equal(headers[0].HeaderName, 'x-origin-verify');
    assert.match(headers[0].HeaderValue, RESOLVE);
    assert.equal(headers[0].HeaderValue, `{{resolve:secretsmanager:${originVerifySecretName(cfg)}:SecretString:::}}`);
    // The replica exists once the main stack is deployed.
    assert.ok(s.edge.dependencies.includes(s.stack));
  });

  test('no secret value in either template: only dynamic references', () => {
    for (const file of [s.templateFile, path.join(s.outdir, s.edge.templateFile)]) {
      // A literal value would be a SecretString property (CDK's unsafePlainText / secretStringValue).
      assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /"SecretString"\s*:/, `${file}: no literal SecretString`);
    }
    // Every MADOGUCHI_ORIGIN_VERIFY and the header are made of dynamic references and nothing else.
    const only = /^(\{\{resolve:secretsmanager:[^:{}]+:SecretString:::[A-Za-z0-9-]*\}\},?)+$/;
    const flat = (v: unknown) => parts(v).map((p) => (typeof p === 'string' ? p : 'REF')).join('');
    let seen = 0;
    for (const f of Object.values(resources(t, 'AWS::Lambda::Function'))) {
      const v = f.Properties?.Environment?.Variables?.MADOGUCHI_ORIGIN_VERIFY;
      if (v === undefined) continue;
      seen++;
      assert.match(flat(v), RESOLVE);
      assert.match(flat(v), only);
    }
    assert.equal(seen, FUNCTIONS.filter((f) => f.trigger.kind === 'http').length);
    assert.match(originHeaders(e)[0].HeaderValue, only);
  });

  test('during a rotation the functions accept [new, old] and CloudFront sends new, each by version id', () => {
    const [next, prev] = ['11111111-2222-3333-4444-555555555555', '66666666-7777-8888-9999-000000000000'];
    const r = synth({ config: exampleConfig({ originVerifyVersions: [next, prev] }) });
    try {
      const id = r.stack.getLogicalId(r.stack.originVerifySecret.node.defaultChild as never);
      const env = r.template.toJSON().Resources[r.stack.getLogicalId(r.stack.functions.forms.node.defaultChild as never)]
        .Properties.Environment.Variables;
      assert.deepEqual(env.MADOGUCHI_ORIGIN_VERIFY, {
        'Fn::Join': ['', [
          '{{resolve:secretsmanager:', { Ref: id }, `:SecretString:::${next}}},{{resolve:secretsmanager:`, { Ref: id }, `:SecretString:::${prev}}}`,
        ]],
      });
      assert.deepEqual(originHeaders(r.edgeTemplate), [{
        HeaderName: 'x-origin-verify',
        HeaderValue: `{{resolve:secretsmanager:${originVerifySecretName(cfg)}:SecretString:::${next}}}`,
      }]);
    } finally {
      fs.rmSync(r.outdir, { recursive: true, force: true });
    }
  });
});

describe('operations', () => {
  test('schedules exist, disabled, each naming the target to come', () => {
    const rules = Object.values(resources(t, 'AWS::Events::Rule'))
      .filter((r) => /to come/.test(r.Properties!.Description));
    assert.equal(rules.length, SCHEDULES.length);
    for (const r of rules) {
      assert.equal(r.Properties!.State, 'DISABLED');
      assert.equal(r.Properties!.Targets, undefined);
      assert.match(r.Properties!.Description, /to come/);
    }
  });

  test('functions with a schedule: an enabled rule targets each, and nothing else', () => {
    const live = Object.values(resources(t, 'AWS::Events::Rule'))
      .filter((r) => !/to come/.test(r.Properties!.Description));
    const scheduled = FUNCTIONS.filter((f) => f.schedule);
    assert.deepEqual(scheduled.map((f) => f.name), ['linkage-outbound', 'payment-events']);
    assert.equal(live.length, scheduled.length);
    for (const [name, expression] of [['linkage-outbound', 'rate(5 minutes)'], ['payment-events', 'rate(10 minutes)']] as const) {
      const found = live.filter((r) => JSON.stringify(r.Properties!.Targets?.[0]?.Arn) === JSON.stringify(arn(idOf(s.stack.functions[name]))));
      assert.equal(found.length, 1, name);
      const rule = found[0].Properties!;
      assert.equal(rule.ScheduleExpression, expression, name);
      assert.notEqual(rule.State, 'DISABLED');
      assert.equal(rule.Targets.length, 1);
      assert.equal(rule.Description, FUNCTIONS.find((f) => f.name === name)!.schedule!.why);
      // What EventBridge could not deliver lands in the function's own queue's DLQ.
      assert.deepEqual(rule.Targets[0].DeadLetterConfig, { Arn: arn(idOf(s.stack.queues[name].dlq)) });
    }
  });

  test('the payment reconciliation placeholder is gone: payment-events runs it', () => {
    assert.ok(!SCHEDULES.some((x) => (x.id as string) === 'PaymentReconciliation'));
    assert.ok(!Object.values(resources(t, 'AWS::Events::Rule')).some((r) => /payments \(to come\)/.test(r.Properties!.Description)));
  });

  test('alarms to the SNS topic: errors, throttles, DLQ depth > 0, API 5xx, p99 latency', () => {
    const alarms = Object.values(resources(t, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties!);
    const topic = ref(idOf(s.stack.alarmTopic));
    for (const a of alarms) assert.deepEqual(a.AlarmActions, [topic]);
    for (const spec of FUNCTIONS) {
      const fnRef = ref(idOf(s.stack.functions[spec.name]));
      for (const metric of ['Errors', 'Throttles']) {
        assert.ok(alarms.some((a) => a.MetricName === metric && JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'FunctionName', Value: fnRef }])), `${spec.name} ${metric}`);
      }
    }
    for (const { dlq } of Object.values(s.stack.queues)) {
      assert.ok(alarms.some((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible' && a.Threshold === 0
        && a.ComparisonOperator === 'GreaterThanThreshold' && JSON.stringify(a.Dimensions).includes(idOf(dlq))));
    }
    assert.ok(alarms.some((a) => a.MetricName === '5xx' && a.Namespace === 'AWS/ApiGateway'));
    assert.ok(alarms.some((a) => a.MetricName === 'Latency' && a.ExtendedStatistic === 'p99'));
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: arn(idOf(s.stack.keys.alarm)) });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: cfg.alarmEmail });
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  test('backup: daily, 35 days, copied to the second region when configured', () => {
    t.hasResourceProperties('AWS::Backup::BackupPlan', {
      BackupPlan: {
        BackupPlanName: Match.anyValue(),
        BackupPlanRule: [Match.objectLike({
          ScheduleExpression: 'cron(0 18 * * ? *)',
          Lifecycle: { DeleteAfterDays: 35 },
          CopyActions: [{ DestinationBackupVaultArn: cfg.backupCopyVaultArn, Lifecycle: { DeleteAfterDays: 35 } }],
        })],
      },
    });
    t.hasResourceProperties('AWS::Backup::BackupSelection', {
      BackupSelection: Match.objectLike({ Resources: [arn(idOf(s.stack.table))] }),
    });
    t.hasResourceProperties('AWS::Backup::BackupVault', { EncryptionKeyArn: arn(idOf(s.stack.keys.backup)) });
  });

  test('backup without a copy vault: no copy action', () => {
    const plain = synth({ config: exampleConfig({ backupCopyVaultArn: undefined }) });
    const plan = Object.values(resources(plain.template, 'AWS::Backup::BackupPlan'))[0].Properties!;
    assert.equal(plan.BackupPlan.BackupPlanRule[0].CopyActions, undefined);
    fs.rmSync(plain.outdir, { recursive: true, force: true });
  });
});

describe('cdk-nag and the synthesized files', () => {
  test('AwsSolutions and Serverless: no finding left unacknowledged', () => {
    const report = JSON.parse(fs.readFileSync(path.join(s.outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ pluginName: string; conclusion: string; violations: Array<{ ruleName: string }> }>;
    };
    assert.deepEqual(report.pluginReports.map((r) => r.pluginName).sort(), ['AwsSolutions', 'Serverless']);
    for (const r of report.pluginReports) {
      assert.deepEqual(r.violations.map((v) => v.ruleName), [], r.pluginName);
      assert.equal(r.conclusion, 'success');
    }
  });

  test('every acknowledgement names one finding and carries a reason', () => {
    const acks = [...ACKNOWLEDGED.get(s.stack)!, ...ACKNOWLEDGED.get(s.edge)!];
    assert.ok(acks.length > 0);
    for (const a of acks) {
      assert.match(a.id, /^(AwsSolutions::AwsSolutions|Serverless::Serverless)-[A-Za-z0-9]+(\[.+\])?$/);
      assert.ok(a.reason.trim().length >= 40 && !a.reason.includes('no reason given'), `${a.path} ${a.id}: reason missing or too short`);
    }
    fs.writeFileSync(path.join(s.outdir, 'acknowledgements.json'), JSON.stringify(acks, null, 2));
  });

  test('the template is written for cfn-lint', () => {
    assert.ok(fs.existsSync(s.templateFile));
    assert.ok(fs.existsSync(path.join(s.outdir, s.edge.templateFile)), 'the edge stack template is linted too');
    assert.equal(path.dirname(s.templateFile), path.join(INFRA, 'build', 'cdk.out.test'));
  });
});
