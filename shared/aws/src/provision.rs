//! Creates, idempotently, the resources of a local run against an AWS-compatible endpoint
//! (moto's server mode: `make dev` with the AWS adapters, the contract suite).
//!
//! Production resources come from the CDK app in `infra/`, which must create the same shapes:
//! - table: keys `pk`/`sk` (S), GSI `gsi1` on `gsi1pk`/`gsi1sk` (S, projection ALL),
//!   on-demand billing, TTL on `ttl`;
//! - buckets: private, in the backend's region;
//! - queue `<name>` with `VisibilityTimeout` and `RedrivePolicy {deadLetterTargetArn:
//!   <name>-dlq, maxReceiveCount: max_receives}`; `<name>-dlq` keeps messages 14 days;
//! - a symmetric (`SYMMETRIC_DEFAULT`, `ENCRYPT_DECRYPT`) key for data keys and an `HMAC_256`
//!   (`GENERATE_VERIFY_MAC`) key for blind indexes, found by alias;
//! - the SES identity of the sender;
//! - bucket notifications: object-created and object-tagging events under a prefix of a bucket
//!   go to a queue.
//!
//! Every `ensure_*` function can be called again on existing resources.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::QueueAttributeName;
use madoguchi_ports::{PortError, PortResult};

use crate::AwsBackend;
use crate::error::{malformed, map_sdk};
use crate::item::GSI1;
use crate::resources::AwsResources;

/// How long a dead-letter queue keeps messages (SQS's maximum, 14 days).
pub const DLQ_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Logical name (`notify`); its dead-letter queue is `<logical>-dlq`.
    pub logical: String,
    /// SQS queue name; the dead-letter queue is `<name>-dlq`.
    pub name: String,
    pub visibility_timeout: Duration,
    /// Receives after which SQS moves a message to the dead-letter queue.
    pub max_receives: u32,
}

/// What to create. Build it with [`ProvisionSpec::named`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionSpec {
    pub prefix: String,
    pub table: String,
    /// Logical name → bucket name.
    pub buckets: BTreeMap<String, String>,
    pub queues: Vec<QueueSpec>,
    /// KMS aliases (`alias/...`) of the data-key and MAC keys.
    pub data_key_alias: String,
    pub mac_key_alias: String,
    pub mail_from: Option<String>,
    /// (bucket logical name, key prefix, queue logical name): S3 object-created events.
    pub notifications: Vec<(String, String, String)>,
}

impl ProvisionSpec {
    /// Resources named after `prefix` (lowercase letters, digits and `-`, as S3 wants):
    /// table `<prefix>`, bucket `<prefix>-<logical>`, queue `<prefix>-<logical>`, keys
    /// `alias/<prefix>-data` and `alias/<prefix>-mac`.
    pub fn named(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            table: prefix.to_owned(),
            buckets: BTreeMap::new(),
            queues: Vec::new(),
            data_key_alias: format!("alias/{prefix}-data"),
            mac_key_alias: format!("alias/{prefix}-mac"),
            mail_from: None,
            notifications: Vec::new(),
        }
    }

    /// Object-created events for keys under `prefix` of bucket `bucket` go to queue `queue`
    /// (both logical names, declared with [`Self::bucket`] and [`Self::queue`]).
    pub fn notify(mut self, bucket: &str, prefix: &str, queue: &str) -> Self {
        self.notifications
            .push((bucket.to_owned(), prefix.to_owned(), queue.to_owned()));
        self
    }

    pub fn bucket(mut self, logical: &str) -> Self {
        self.buckets
            .insert(logical.to_owned(), format!("{}-{logical}", self.prefix));
        self
    }

    pub fn queue(mut self, logical: &str, visibility_timeout: Duration, max_receives: u32) -> Self {
        self.queues.push(QueueSpec {
            logical: logical.to_owned(),
            name: format!("{}-{logical}", self.prefix),
            visibility_timeout,
            max_receives,
        });
        self
    }

    pub fn mail_from(mut self, address: &str) -> Self {
        self.mail_from = Some(address.to_owned());
        self
    }
}

/// Creates (or finds) everything in `spec`; returns the names, URLs and key ids as the
/// functions will read them (see [`AwsResources`]).
pub async fn provision(backend: &AwsBackend, spec: &ProvisionSpec) -> PortResult<AwsResources> {
    ensure_table(backend.dynamodb_client(), &spec.table).await?;
    let mut resources = AwsResources {
        table: spec.table.clone(),
        ..AwsResources::default()
    };
    for (logical, bucket) in &spec.buckets {
        ensure_bucket(backend.s3_client(), bucket, backend.region()).await?;
        resources.buckets.insert(logical.clone(), bucket.clone());
    }
    for q in &spec.queues {
        let (url, dlq_url) = ensure_queue(
            backend.sqs_client(),
            &q.name,
            q.visibility_timeout,
            q.max_receives,
        )
        .await?;
        resources.queues.insert(q.logical.clone(), url);
        resources
            .queues
            .insert(format!("{}-dlq", q.logical), dlq_url);
    }
    for (bucket, prefix, queue) in &spec.notifications {
        let bucket = spec.buckets.get(bucket).ok_or_else(|| {
            PortError::Invalid(format!("notification of undeclared bucket {bucket}"))
        })?;
        let url = resources.queues.get(queue).ok_or_else(|| {
            PortError::Invalid(format!("notification to undeclared queue {queue}"))
        })?;
        ensure_bucket_notification(backend, bucket, prefix, url).await?;
    }
    resources.data_key_id = Some(
        ensure_kms_key(
            backend.kms_client(),
            &spec.data_key_alias,
            KmsKeyKind::DataKeys,
        )
        .await?,
    );
    resources.mac_key_id =
        Some(ensure_kms_key(backend.kms_client(), &spec.mac_key_alias, KmsKeyKind::Mac).await?);
    if let Some(from) = &spec.mail_from {
        ensure_email_identity(backend.ses_client(), from).await?;
        resources.mail_from = Some(from.clone());
    }
    tracing::info!(
        table = %spec.table,
        buckets = spec.buckets.len(),
        queues = spec.queues.len(),
        "resources provisioned"
    );
    Ok(resources)
}

fn string_attr(name: &str) -> PortResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|_| malformed("attribute definition"))
}

fn key_element(name: &str, key_type: KeyType) -> PortResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|_| malformed("key schema"))
}

/// The single table with `gsi1` and TTL on `ttl`; waits until it is `ACTIVE`.
pub async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> PortResult<()> {
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key_element("gsi1pk", KeyType::Hash)?)
        .key_schema(key_element("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|_| malformed("index definition"))?;
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(string_attr("pk")?)
        .attribute_definitions(string_attr("sk")?)
        .attribute_definitions(string_attr("gsi1pk")?)
        .attribute_definitions(string_attr("gsi1sk")?)
        .key_schema(key_element("pk", KeyType::Hash)?)
        .key_schema(key_element("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(e) = created
        && e.code() != Some("ResourceInUseException")
    {
        return Err(map_sdk("dynamodb", "CreateTable", &e));
    }
    for _ in 0..300 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| map_sdk("dynamodb", "DescribeTable", &e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| map_sdk("dynamodb", "DescribeTimeToLive", &e))?;
    let status = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if !matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(|_| malformed("ttl specification"))?,
            )
            .send()
            .await
            .map_err(|e| map_sdk("dynamodb", "UpdateTimeToLive", &e))?;
    }
    tracing::info!(table, "table ready");
    Ok(())
}

pub async fn ensure_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    region: Option<&str>,
) -> PortResult<()> {
    let mut req = client.create_bucket().bucket(bucket);
    if let Some(region) = region.filter(|r| *r != "us-east-1") {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou")) => {}
        Err(e) => return Err(map_sdk("s3", "CreateBucket", &e)),
    }
    tracing::info!(bucket, "bucket ready");
    Ok(())
}

async fn create_or_update_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> PortResult<String> {
    let mut create = client.create_queue().queue_name(name);
    for (k, v) in &attributes {
        create = create.attributes(k.clone(), v);
    }
    match create.send().await {
        Ok(out) => out
            .queue_url()
            .map(str::to_owned)
            .ok_or_else(|| malformed("queue url")),
        Err(e) if matches!(e.code(), Some("QueueAlreadyExists" | "QueueNameExists")) => {
            let url = client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| map_sdk("sqs", "GetQueueUrl", &e))?
                .queue_url()
                .map(str::to_owned)
                .ok_or_else(|| malformed("queue url"))?;
            let mut set = client.set_queue_attributes().queue_url(&url);
            for (k, v) in attributes {
                set = set.attributes(k, v);
            }
            set.send()
                .await
                .map_err(|e| map_sdk("sqs", "SetQueueAttributes", &e))?;
            Ok(url)
        }
        Err(e) => Err(map_sdk("sqs", "CreateQueue", &e)),
    }
}

/// Queue `name` and its dead-letter queue `name-dlq`; returns both URLs.
pub async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout: Duration,
    max_receives: u32,
) -> PortResult<(String, String)> {
    if max_receives == 0 || max_receives > 1000 {
        return Err(PortError::Invalid("max_receives must be 1..=1000".into()));
    }
    let dlq_name = format!("{name}-dlq");
    let dlq_url = create_or_update_queue(
        client,
        &dlq_name,
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION.as_secs().to_string(),
        )],
    )
    .await?;
    let attrs = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| map_sdk("sqs", "GetQueueAttributes", &e))?;
    let dlq_arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| malformed("queue arn"))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receives,
    })
    .to_string();
    let url = create_or_update_queue(
        client,
        name,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await?;
    tracing::info!(queue = name, max_receives, "queue ready");
    Ok((url, dlq_url))
}

/// Sends S3 object-created and object-tagging events for `prefix` of `bucket` to the queue at
/// `queue_url`
/// (replaces the bucket's notification configuration: one rule per bucket is all we use).
pub async fn ensure_bucket_notification(
    backend: &AwsBackend,
    bucket: &str,
    prefix: &str,
    queue_url: &str,
) -> PortResult<()> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let attrs = backend
        .sqs_client()
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| map_sdk("sqs", "GetQueueAttributes", &e))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| malformed("queue arn"))?;
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(prefix)
                        .build(),
                )
                .build(),
        )
        .build();
    let rule = QueueConfiguration::builder()
        .queue_arn(arn)
        .events(Event::S3ObjectCreated)
        // GuardDuty's scan verdict arrives as an object tag.
        .events(Event::from("s3:ObjectTagging:Put"))
        .filter(filter)
        .build()
        .map_err(|_| malformed("queue configuration"))?;
    backend
        .s3_client()
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(rule)
                .build(),
        )
        .send()
        .await
        .map_err(|e| map_sdk("s3", "PutBucketNotificationConfiguration", &e))?;
    tracing::info!(bucket, prefix, "bucket notification ready");
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsKeyKind {
    /// `SYMMETRIC_DEFAULT`, `ENCRYPT_DECRYPT`: wraps data keys.
    DataKeys,
    /// `HMAC_256`, `GENERATE_VERIFY_MAC`: blind indexes.
    Mac,
}

/// Finds the key behind `alias` (`alias/...`) or creates key and alias; returns the key id.
pub async fn ensure_kms_key(
    client: &aws_sdk_kms::Client,
    alias: &str,
    kind: KmsKeyKind,
) -> PortResult<String> {
    if !alias.starts_with("alias/") {
        return Err(PortError::Invalid(
            "KMS alias must start with alias/".into(),
        ));
    }
    for _ in 0..2 {
        match client.describe_key().key_id(alias).send().await {
            Ok(out) => {
                return out
                    .key_metadata()
                    .map(|m| m.key_id().to_owned())
                    .ok_or_else(|| malformed("key metadata"));
            }
            Err(e) if e.code() == Some("NotFoundException") => {}
            Err(e) => return Err(map_sdk("kms", "DescribeKey", &e)),
        }
        let (spec, usage) = match kind {
            KmsKeyKind::DataKeys => (KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt),
            KmsKeyKind::Mac => (KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac),
        };
        let created = client
            .create_key()
            .key_spec(spec)
            .key_usage(usage)
            .description(format!("madoguchi {alias}"))
            .send()
            .await
            .map_err(|e| map_sdk("kms", "CreateKey", &e))?;
        let key_id = created
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .ok_or_else(|| malformed("key metadata"))?;
        match client
            .create_alias()
            .alias_name(alias)
            .target_key_id(&key_id)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(alias, ?kind, "kms key created");
                return Ok(key_id);
            }
            // Someone else created the alias meanwhile: use theirs (loop once more).
            Err(e) if e.code() == Some("AlreadyExistsException") => {}
            Err(e) => return Err(map_sdk("kms", "CreateAlias", &e)),
        }
    }
    Err(PortError::Backend("KMS alias kept changing".into()))
}

/// Registers the sender identity (moto treats it as verified at once; real SES sends a
/// verification mail or needs DKIM records, which is the CDK app's business).
pub async fn ensure_email_identity(
    client: &aws_sdk_sesv2::Client,
    address: &str,
) -> PortResult<()> {
    match client
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("AlreadyExistsException") => {}
        Err(e) => return Err(map_sdk("sesv2", "CreateEmailIdentity", &e)),
    }
    tracing::info!(identities = 1, "mail identity ready");
    Ok(())
}
