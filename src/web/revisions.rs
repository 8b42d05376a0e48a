//! todo
use axum::response::Response;
use super::PageError;
pub async fn list() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn submit() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn replay() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
