//! levee's config pipeline: file -> raw schema -> validated [`Config`].
pub mod model;
pub use model::*;
