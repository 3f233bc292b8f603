//! The routes of batch-api.md §3 (rows 1-13 and the legacy single-tile restart).

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::auth;
use super::{AppState, HttpError};
use crate::api::{self, ListLinks};
use crate::engine::lifecycle::{Event, TileStatus};
use crate::engine::Page;
use crate::store::RequestSort;

type Result<T> = std::result::Result<T, HttpError>;
type State = web::Data<AppState>;

/// Page size when `count` is not given (the most one page may hold is
/// `Limits::max_list_count`).
const DEFAULT_COUNT: u64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/healthz",
        web::get().to(|| async { HttpResponse::Ok().body("ok") }),
    )
    .route("/oauth/token", web::post().to(token))
    .route(
        "/auth/realms/main/protocol/openid-connect/token",
        web::post().to(token),
    )
    .service(
        web::scope("/api/v1/batch")
            .route("/process", web::post().to(create))
            .route("/process", web::get().to(list))
            .route("/process/{id}", web::get().to(get))
            .route("/process/{id}", web::put().to(update))
            .route("/process/{id}", web::delete().to(delete))
            .route("/process/{id}/analyse", web::post().to(analyse))
            .route("/process/{id}/start", web::post().to(start))
            .route("/process/{id}/cancel", web::post().to(cancel))
            .route(
                "/process/{id}/restartpartial",
                web::post().to(restart_partial),
            )
            .route("/process/{id}/tiles", web::get().to(tiles))
            .route("/process/{id}/tiles/{tile}", web::get().to(tile))
            .route(
                "/process/{id}/tiles/{tile}/restart",
                web::post().to(restart_tile),
            )
            .route("/tilinggrids", web::get().to(grids))
            .route("/tilinggrids/{id}", web::get().to(grid)),
    )
    .configure(super::v2::configure)
    .default_service(web::to(|| async {
        HttpError::not_found("no such endpoint").into_response()
    }));
}

impl HttpError {
    fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

/// The authenticated client of a call (from `Authorization: Bearer ...`).
pub struct Client(pub(super) String);

impl FromRequest for Client {
    type Error = HttpError;
    type Future = Ready<Result<Client>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let check = || -> Result<Client> {
            let state = req
                .app_data::<State>()
                .ok_or_else(|| HttpError::bad_request("server misconfigured"))?;
            let header = req
                .headers()
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .ok_or(auth::AuthError::BadToken)?;
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or(auth::AuthError::BadToken)?;
            let (client, generation) = auth::verify_token_claims(&state.token_key, token.trim())?;
            state
                .guards
                .check_client(state.engine.store(), &client, generation)?;
            Ok(Client(client))
        };
        ready(check())
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// OAuth2 client credentials; id and secret in the form body or in HTTP Basic.
async fn token(state: State, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let form: TokenForm = serde_urlencoded_form(&body)?;
    if form.grant_type.as_deref() != Some("client_credentials") {
        return Err(HttpError::bad_request(
            "grant_type must be client_credentials",
        ));
    }
    let (id, secret) = match (form.client_id, form.client_secret) {
        (Some(id), Some(secret)) => (id, secret),
        _ => basic_credentials(&req).ok_or(auth::AuthError::BadCredentials)?,
    };
    // Wrong secrets are counted per client id; once over the rate every attempt gets a
    // 429 before the secret is even looked at, so guessing is slowed to the rate.
    let failures = &state.guards.token_failures;
    if let Err(wait) = failures.peek(&id) {
        return Ok(super::guard::too_many_requests(
            wait,
            "failed token requests",
        ));
    }
    let st = state.clone();
    let id2 = id.clone();
    let checked = web::block(move || {
        auth::check_client(st.engine.store(), &id2, &secret)?;
        st.engine
            .store()
            .client_token_generation(&id2)?
            .ok_or(auth::AuthError::BadCredentials)
    })
    .await
    .map_err(|_| HttpError::from(crate::engine::EngineError::Stopped))?;
    let generation = match checked {
        Err(auth::AuthError::BadCredentials) => {
            if let Err(wait) = failures.check(&id) {
                return Ok(super::guard::too_many_requests(
                    wait,
                    "failed token requests",
                ));
            }
            return Err(auth::AuthError::BadCredentials.into());
        }
        other => other?,
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "access_token": auth::issue_token(&state.token_key, &id, generation),
        "token_type": "Bearer",
        "expires_in": auth::TOKEN_TTL_SECS,
    })))
}

fn serde_urlencoded_form(body: &[u8]) -> Result<TokenForm> {
    let mut form = TokenForm {
        grant_type: None,
        client_id: None,
        client_secret: None,
    };
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "grant_type" => form.grant_type = Some(v.into_owned()),
            "client_id" => form.client_id = Some(v.into_owned()),
            "client_secret" => form.client_secret = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(form)
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    use base64::Engine as _;
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Runs a blocking engine call off the async worker.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::engine::Result<T> + Send + 'static,
) -> Result<T> {
    web::block(f)
        .await
        .map_err(|_| HttpError::from(crate::engine::EngineError::Stopped))?
        .map_err(HttpError::from)
}

pub(super) fn parse_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .map_err(|e| HttpError::bad_request(format!("malformed JSON body: {e}")))
}

async fn create(state: State, Client(client): Client, body: web::Bytes) -> Result<HttpResponse> {
    if let Err(wait) = state.guards.create.check(&client) {
        return Ok(super::guard::too_many_requests(
            wait,
            "batch request creation",
        ));
    }
    let body = parse_json(&body)?;
    let record = blocking(move || state.engine.create(&client, &body)).await?;
    Ok(HttpResponse::Created().json(api::request_json(&record)))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    count: Option<String>,
    viewtoken: Option<String>,
    sort: Option<String>,
    status: Option<String>,
}

/// `count` and `viewtoken` (an offset or list position) of a list call.
pub(super) fn paging(q: &ListQuery, state: &AppState) -> Result<(u64, u64)> {
    let max_count = state.engine.config().limits.max_list_count;
    let count = match &q.count {
        None => DEFAULT_COUNT.min(max_count),
        Some(c) => c
            .parse::<u64>()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| {
                HttpError::bad_request(format!("count must be a positive integer, got '{c}'"))
            })?
            .min(max_count),
    };
    let from = match &q.viewtoken {
        None => 0,
        Some(t) => {
            api::limits::parse_viewtoken(t).map_err(|e| HttpError::bad_request(e.to_string()))?
        }
    };
    Ok((count, from))
}

pub(super) fn page_json<T>(page: Page<T>, from: u64, render: impl Fn(&T) -> Value) -> Value {
    api::list_json(
        page.items.iter().map(render).collect(),
        &ListLinks {
            current: Some(from.to_string()),
            next: page.next.map(|n| n.to_string()),
        },
    )
}

async fn list(
    state: State,
    Client(client): Client,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let (count, from) = paging(&q, &state)?;
    let page = state.engine.list(&client, sort_of(&q)?, from, count)?;
    Ok(HttpResponse::Ok().json(page_json(page, from, api::request_json)))
}

/// The `sort` parameter of request lists.
pub(super) fn sort_of(q: &ListQuery) -> Result<RequestSort> {
    Ok(match q.sort.as_deref() {
        None | Some("created") => RequestSort::Created,
        Some("created:desc") => RequestSort::CreatedDesc,
        Some("status") => RequestSort::Status,
        Some("status:desc") => RequestSort::StatusDesc,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "sort must be one of created, created:desc, status, status:desc; got '{other}'"
            )))
        }
    })
}

async fn get(state: State, Client(client): Client, id: web::Path<String>) -> Result<HttpResponse> {
    let record = state.engine.get(&client, &id)?;
    Ok(HttpResponse::Ok().json(api::request_json(&record)))
}

async fn update(
    state: State,
    Client(client): Client,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let body = parse_json(&body)?;
    let record = blocking(move || state.engine.update(&client, &id, &body)).await?;
    Ok(HttpResponse::Ok().json(api::request_json(&record)))
}

async fn delete(
    state: State,
    Client(client): Client,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    blocking(move || state.engine.delete(&client, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn act(
    state: State,
    client: String,
    id: String,
    event: Event,
) -> Result<HttpResponse> {
    blocking(move || state.engine.act(&client, &id, event)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn analyse(
    state: State,
    Client(c): Client,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    act(state, c, id.into_inner(), Event::Analyse).await
}

pub(super) async fn start(
    state: State,
    Client(c): Client,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    act(state, c, id.into_inner(), Event::Start).await
}

async fn cancel(state: State, Client(c): Client, id: web::Path<String>) -> Result<HttpResponse> {
    act(state, c, id.into_inner(), Event::Cancel).await
}

async fn restart_partial(
    state: State,
    Client(c): Client,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    act(state, c, id.into_inner(), Event::RestartPartial).await
}

async fn restart_tile(
    state: State,
    Client(client): Client,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse> {
    let (id, tile) = path.into_inner();
    blocking(move || state.engine.restart_tile(&client, &id, tile)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn tiles(
    state: State,
    Client(client): Client,
    id: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let (count, from) = paging(&q, &state)?;
    let status = match &q.status {
        None => None,
        Some(s) => Some(TileStatus::parse(s).ok_or_else(|| {
            HttpError::bad_request(format!(
                "status must be one of PENDING, SCHEDULED, QUEUED, PROCESSING, PROCESSED, FAILED; got '{s}'"
            ))
        })?),
    };
    let page = state.engine.tiles(&client, &id, status, from, count)?;
    Ok(HttpResponse::Ok().json(page_json(page, from, api::tile_json)))
}

async fn tile(
    state: State,
    Client(client): Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (id, tile) = path.into_inner();
    let tile_id = tile
        .parse::<i64>()
        .map_err(|_| HttpError::not_found(format!("tile {tile} not found")))?;
    let t = state.engine.tile(&client, &id, tile_id)?;
    Ok(HttpResponse::Ok().json(api::tile_json(&t)))
}

pub(super) async fn grids(
    state: State,
    _: Client,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let (count, from) = paging(&q, &state)?;
    let all = crate::grid::grids();
    let start = (from as usize).min(all.len());
    let end = (start + count as usize).min(all.len());
    let page = Page {
        items: all[start..end].to_vec(),
        next: (end < all.len()).then_some(end as u64),
    };
    Ok(HttpResponse::Ok().json(page_json(page, from, api::grid_json)))
}

pub(super) async fn grid(_: Client, id: web::Path<String>) -> Result<HttpResponse> {
    let g = id
        .parse::<i64>()
        .ok()
        .and_then(crate::grid::grid)
        .ok_or_else(|| HttpError::bad_request(format!("unknown tiling grid id '{id}'")))?;
    Ok(HttpResponse::Ok().json(api::grid_json(g)))
}
