//! Session tests over real TCP.
