//! DRF `LimitOffsetPagination`: the page body, the absolute `next` and `previous` URLs of a
//! page (pure functions over the request's URL parts), and the answer every listing route
//! gives ([`page_response`]).

use crate::views::PageBody;
use serde::Serialize;

/// The `200` answer with one page of `results` (of `count` in all) at `limit` and `offset`,
/// its `next` and `previous` links built from `req`.
pub fn page_response<T: Serialize>(
    req: &actix_web::HttpRequest,
    limit: u64,
    offset: u64,
    count: u64,
    results: Vec<T>,
) -> actix_web::HttpResponse {
    let (next, previous) = links(
        &absolute_path(req),
        req.query_string(),
        limit,
        offset,
        count,
    );
    actix_web::HttpResponse::Ok().json(PageBody {
        count,
        next,
        previous,
        results,
    })
}

/// `scheme://host/path` of the request, as DRF's `build_absolute_uri` gives it.
pub fn absolute_path(req: &actix_web::HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}{}", info.scheme(), info.host(), req.path())
}

/// Default page size when `limit` is absent.
pub const DEFAULT_LIMIT: u64 = 100;

/// Largest page size; a larger `limit` is clamped to it, as DRF's `max_limit` does.
pub const MAX_LIMIT: u64 = 1000;

/// The page size for a requested `limit` (default when absent, clamped to [`MAX_LIMIT`]).
pub fn effective_limit(requested: Option<u64>) -> Result<u64, String> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err("limit must be at least 1".into()),
        Some(n) => Ok(n.min(MAX_LIMIT)),
    }
}

/// `(next, previous)` for a page, like DRF: `next` is `None` past the last row, `previous`
/// is `None` on the first page and drops `offset` when it would be 0. `base` is the absolute
/// URL without query (`http://host/api/films/`), `query` the raw query string; other
/// parameters are kept as they were sent.
pub fn links(
    base: &str,
    query: &str,
    limit: u64,
    offset: u64,
    count: u64,
) -> (Option<String>, Option<String>) {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            key != "limit" && key != "offset"
        })
        .collect();
    let url = |offset: Option<u64>| {
        let mut params = kept
            .clone()
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        params.push(format!("limit={limit}"));
        if let Some(o) = offset {
            params.push(format!("offset={o}"));
        }
        format!("{base}?{}", params.join("&"))
    };
    let next = (offset.saturating_add(limit) < count).then(|| url(Some(offset + limit)));
    let previous = (offset > 0).then(|| {
        if offset <= limit {
            url(None)
        } else {
            url(Some(offset - limit))
        }
    });
    (next, previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://h/api/films/";

    #[test]
    fn first_page_has_next_and_no_previous() {
        let (next, prev) = links(BASE, "limit=2&source=a", 2, 0, 5);
        assert_eq!(
            next.as_deref(),
            Some("http://h/api/films/?source=a&limit=2&offset=2")
        );
        assert_eq!(prev, None);
    }

    #[test]
    fn middle_page_links_both_ways_and_second_page_previous_drops_offset() {
        let (next, prev) = links(BASE, "offset=2&limit=2", 2, 2, 5);
        assert_eq!(
            next.as_deref(),
            Some("http://h/api/films/?limit=2&offset=4")
        );
        assert_eq!(prev.as_deref(), Some("http://h/api/films/?limit=2"));
        let (_, prev) = links(BASE, "", 2, 3, 5);
        assert_eq!(
            prev.as_deref(),
            Some("http://h/api/films/?limit=2&offset=1")
        );
    }

    #[test]
    fn last_page_has_no_next() {
        let (next, prev) = links(BASE, "", 2, 4, 5);
        assert_eq!(next, None);
        assert!(prev.is_some());
        assert_eq!(links(BASE, "", 100, 0, 0), (None, None));
    }

    #[test]
    fn limit_defaults_and_clamps() {
        assert_eq!(effective_limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(effective_limit(Some(5000)), Ok(MAX_LIMIT));
        assert!(effective_limit(Some(0)).is_err());
    }
}
