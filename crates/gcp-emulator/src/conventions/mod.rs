//! Google REST conventions shared by every emulated API (errors, payload shaping, paging,
//! update masks, wire encodings, media uploads). No API-specific behaviour lives here.

pub mod error;
pub mod field_mask;
pub mod paging;
pub mod payload;
pub mod upload;
pub mod wire;

pub use error::{ApiError, Code, ErrorStyle};
pub use wire::Query;
