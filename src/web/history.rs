//! todo
use axum::response::Response;
use super::PageError;
pub async fn plan_history() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn objective_history() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
