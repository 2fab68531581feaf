//! Card payments through a gateway: the port, the Stripe adapter, webhook signatures and the
//! sandbox gateway for embedded mode.
//!
//! Fees (手数料) for applications are paid by card. Card numbers never reach Madoguchi: the
//! citizen SPA tokenises the card with the gateway's own browser library, and this crate only
//! ever handles the gateway's ids (`cus_…`, `pm_…`, `pi_…`). Every call names the tenant,
//! because each municipality has its own gateway account; the adapters find that account's
//! credentials through [`GatewayAccounts`].
//!
//! - [`port`]: the [`PaymentGateway`] trait, its model types and [`GatewayError`]. The port
//!   follows Stripe's shape (customers, setup intents, payment methods, payment intents,
//!   refunds, events), which PAY.JP shares; a 公金 (public funds) gateway can implement it too.
//! - [`stripe`]: [`StripeGateway`], the Stripe REST API over HTTPS (reqwest + rustls), with
//!   idempotency keys and bounded retries.
//! - [`webhook`]: `Stripe-Signature` verification over the raw body, and signing for the sandbox.
//! - [`sandbox`]: [`SandboxGateway`], the same port on the item store, for embedded mode and
//!   tests; every object it makes says it is a sandbox object.
//!
//! See `docs/payments-gateway.md`.

pub mod form;
pub mod port;
pub mod sandbox;
pub mod stripe;
pub mod webhook;

pub use port::*;
pub use sandbox::{
    Delivery, MemorySink, NoWebhooks, SandboxGateway, SimulatedFault, TestCard, WebhookSink,
};
pub use stripe::{StripeConfig, StripeGateway};
