//! The REST API: actix-web routes over [`Engine`], the OAuth2 token endpoint, pagination
//! and the mapping of errors to status codes. Each route is a few lines: parse, call the
//! engine, render with `api`.

pub mod auth;
mod error;
mod guard;
mod ratelimit;
mod routes;
mod v2;

pub use error::HttpError;

use std::net::SocketAddr;

use actix_web::{web, App, HttpServer};

use crate::engine::Engine;

/// Shared state of the routes.
pub struct AppState {
    pub engine: Engine,
    pub token_key: Vec<u8>,
    /// Rate limits and the token's-client-still-valid check.
    pub guards: guard::Guards,
}

/// Adds every route to an actix-web app (also used by in-process tests).
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}

/// Builds the app state for an engine (loads or creates the token signing key).
pub fn state(engine: Engine) -> Result<web::Data<AppState>, auth::AuthError> {
    let token_key = auth::signing_key(engine.store())?;
    let guards = guard::Guards::new(&engine.config().limits);
    Ok(web::Data::new(AppState {
        engine,
        token_key,
        guards,
    }))
}

/// Serves the API on `addr` until the process is stopped.
pub async fn serve(engine: Engine, addr: SocketAddr, workers: usize) -> std::io::Result<()> {
    let state = state(engine).map_err(std::io::Error::other)?;
    tracing::info!("listening on http://{addr}");
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(8 << 20))
            .configure(configure)
    })
    .workers(workers.max(1))
    .bind(addr)?
    .run()
    .await
}
