//! Test fakes for Postern.
//!
//! - [`exchange`]: an in-process fake of Exchange Online's SMTP front door
//!   (submission, connector relay and Direct Send), with STARTTLS, AUTH,
//!   recorded messages and injectable faults.
//! - [`dns`]: an in-process fake DNS server (UDP and TCP) answering A, MX,
//!   TXT and CNAME from a zone the test can change.
//! - [`identity`]: an in-process fake of the Microsoft identity platform's
//!   OAuth 2.0 endpoints, whose tokens the fake Exchange can check.
//! - [`graph`]: an in-process fake of Microsoft Graph's mail endpoints
//!   (sendMail, drafts, upload sessions) and message trace, checking the
//!   identity fake's tokens, with recorded deliveries, scripted trace
//!   outcomes and injectable faults.
//! - [`tls_front`]: HTTPS with a test CA in front of one of the HTTP fakes.
//!
//! All listen on `127.0.0.1:0` and stop when their handle is dropped. The
//! replies they give follow `docs/exchange-online.md` (§2–§4); where that
//! page is silent, the choice is documented on the item that makes it.

mod clock;
pub mod dns;
pub mod exchange;
pub mod graph;
pub mod identity;
pub mod tls_front;

pub use dns::{FakeDns, Zone};
pub use exchange::{
    max_in_window, FakeExchange, FakeExchangeOptions, Fault, Received, Role, Stage, Stats, MINUTE,
    QUOTA_REPLY,
};
pub use graph::{
    FakeGraph, GraphAttachment, GraphFault, GraphMailbox, GraphMessage, GraphOptions, RequestKind,
    Route, TraceOptions, TraceOutcome, TraceRow,
};
pub use identity::{
    ClientRegistration, FakeIdentity, IdentityOptions, TokenInfo, TokenInspector, TokenValidator,
    GRAPH_RESOURCE,
};
pub use tls_front::TlsFront;
