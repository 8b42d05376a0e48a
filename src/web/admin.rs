//! todo
use axum::response::Response;
use super::PageError;
pub async fn page() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn load_plan() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn create_user() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn delete_user() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn create_token() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
pub async fn revoke_token() -> Result<Response, PageError> { Err(PageError::not_found("todo")) }
