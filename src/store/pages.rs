//! List pages bounded in bytes as well as in rows: a client's requests may each carry a
//! large stored body (AOI, evalscript), and a page of 1000 of them must not cost the
//! daemon gigabytes. The body's size is read with `octet_length`, which SQLite answers
//! without loading the body, so a row over the budget is never read at all.

use rusqlite::params;

use super::{request_from_row, RequestSort, Result, Store, REQUEST_SELECT};
use crate::api::RequestRecord;

/// The ORDER BY of a request list.
pub(super) fn request_order(sort: RequestSort) -> &'static str {
    match sort {
        RequestSort::Created => "created ASC, id",
        RequestSort::CreatedDesc => "created DESC, id",
        RequestSort::Status => "status ASC, created",
        RequestSort::StatusDesc => "status DESC, created",
    }
}

/// A bounded page: its items, and whether it stopped early for the byte budget.
pub struct BoundedPage {
    pub items: Vec<RequestRecord>,
    pub cut_short: bool,
}

impl Store {
    /// Up to `limit` of a client's requests from `offset`, stopping before the item that
    /// would take the stored bodies past `max_bytes` (the first item is always included).
    pub fn list_requests_bounded(
        &self,
        client: &str,
        sort: RequestSort,
        offset: u64,
        limit: u64,
        max_bytes: usize,
    ) -> Result<BoundedPage> {
        let order = request_order(sort);
        let c = self.conn();
        // The size column first: `request_from_row` reads the rest by position.
        let select =
            REQUEST_SELECT.replacen(" FROM requests", ", octet_length(body) FROM requests", 1);
        let mut st = c.prepare(&format!(
            "{select} WHERE client_id = ?1 ORDER BY {order} LIMIT ?2 OFFSET ?3"
        ))?;
        let mut rows = st.query(params![
            client,
            i64::try_from(limit).unwrap_or(i64::MAX),
            i64::try_from(offset).unwrap_or(i64::MAX)
        ])?;
        let mut page = BoundedPage {
            items: Vec::new(),
            cut_short: false,
        };
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            let size: i64 = row.get(14)?;
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if !page.items.is_empty() && bytes.saturating_add(size) > max_bytes {
                page.cut_short = true;
                break;
            }
            bytes = bytes.saturating_add(size);
            page.items.push(request_from_row(row)??);
        }
        Ok(page)
    }
}
