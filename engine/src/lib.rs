//! Postern's relay engine: everything that moves mail, nothing that draws a
//! window. Devices talk SMTP to the `listener`; each message is kept in the
//! `spool` until the `delivery` worker has handed it to Exchange Online,
//! inside the `throttle`'s limits, with credentials from `auth` and
//! `secrets`, and the tenant's endpoint found through `dns`. What happens
//! is broadcast as `events`; `control` answers the CLI and GUI; `clock`
//! writes every date. `engine` wires it all together. The same engine runs
//! behind the tray app and behind `postern serve`.

pub mod auth;
pub mod clock;
pub mod config;
pub mod control;
pub mod delivery;
pub mod diagnose;
pub mod dns;
pub mod engine;
pub mod events;
pub mod graph;
pub mod https;
pub mod listener;
pub mod platform;
pub mod secrets;
pub mod spool;
pub mod throttle;
pub mod tracker;
