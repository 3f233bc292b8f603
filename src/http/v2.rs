//! The Batch v2 routes (`batch-api.md` §16) under `/api/v2/batch`: the same engine calls as
//! v1, rendered as v2 task objects. Tiling grids, analyse and start are v1's own handlers.

use actix_web::{web, HttpResponse};

use super::routes::{
    act, analyse, blocking, grid, grids, page_json, paging, parse_json, sort_of, start, Client,
    ListQuery,
};
use super::{AppState, HttpError};
use crate::engine::lifecycle::Event;

type Result<T> = std::result::Result<T, HttpError>;
type State = web::Data<AppState>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v2/batch")
            .route("/process", web::post().to(create))
            .route("/process", web::get().to(list))
            .route("/process/{id}", web::get().to(get))
            .route("/process/{id}", web::put().to(update))
            .route("/process/{id}/analyse", web::post().to(analyse))
            .route("/process/{id}/start", web::post().to(start))
            .route("/process/{id}/stop", web::post().to(stop))
            .route("/tilinggrids", web::get().to(grids))
            .route("/tilinggrids/{id}", web::get().to(grid)),
    );
}

async fn create(state: State, Client(client): Client, body: web::Bytes) -> Result<HttpResponse> {
    let body = parse_json(&body)?;
    let task = blocking(move || {
        let record = state.engine.create_v2(&client, &body)?;
        state.engine.task(record)
    })
    .await?;
    Ok(HttpResponse::Created().json(task.json()))
}

async fn list(
    state: State,
    Client(client): Client,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let (count, from) = paging(&q, &state)?;
    let sort = sort_of(&q)?;
    let page = blocking(move || state.engine.list_tasks(&client, sort, from, count)).await?;
    Ok(HttpResponse::Ok().json(page_json(page, from, |t| t.json())))
}

async fn get(state: State, Client(client): Client, id: web::Path<String>) -> Result<HttpResponse> {
    let task = blocking(move || state.engine.get_task(&client, &id)).await?;
    Ok(HttpResponse::Ok().json(task.json()))
}

async fn update(
    state: State,
    Client(client): Client,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let body = parse_json(&body)?;
    let task = blocking(move || state.engine.update_v2(&client, &id, &body)).await?;
    Ok(HttpResponse::Ok().json(task.json()))
}

async fn stop(state: State, Client(c): Client, id: web::Path<String>) -> Result<HttpResponse> {
    act(state, c, id.into_inner(), Event::Stop).await
}
