//! Delivery through Microsoft Graph: the building blocks of both routes.
//!
//! The rules they follow are written out in `docs/graph.md`.
//!
//! - [`client`]: the HTTP client (one per engine) and the MIME route's
//!   request.
//! - [`errors`]: what a Graph HTTP answer means for the message (the same
//!   `Verdict` as SMTP replies).
//! - [`envelope`]: exactly the envelope — the header section Graph is given
//!   on the MIME route, and the recipient lists of the draft route.
//! - [`mime_scan`]: a streaming scan of a stored message for the draft
//!   route: headers, body, and attachments as byte ranges of the file.
//! - [`mime_decode`]: decoding those ranges in bounded chunks, and their
//!   exact decoded size.
//! - [`draft`]: the draft route's JSON bodies (the draft message, inline
//!   attachments, upload-session items).
//! - [`draft_route`]: the draft route's requests, from the stored file to
//!   `send`, with the draft id kept in the spool meanwhile.
//! - [`recovery`]: what an earlier attempt left (a send without an answer,
//!   a recorded or untracked draft), settled before the next one sends.
//! - [`json_route`]: JSON `sendMail` without a Sent Items copy
//!   (`graph.save_to_sent_items = false`).

pub mod client;
pub mod draft;
pub mod draft_route;
pub mod envelope;
pub mod errors;
pub mod json_route;
pub mod mime_decode;
pub mod mime_scan;
pub mod recovery;
