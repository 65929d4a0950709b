//! What every request passes through before and after its handler: the
//! [`guard`] (credentials, Host and Origin, body type and size, instance-token
//! scope), [`idempotency`] keys, request accounting ([`observe`]), and the
//! failure [`limiter`] that slows down guessing.

pub mod guard;
pub mod idempotency;
pub mod limiter;
pub mod observe;
