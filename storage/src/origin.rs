//! Where a content's bytes live when no peer holds them, and of what kind
//! each place is: a CDN (the internet, reachable from anywhere) or file
//! storage (a share or web server of the enterprise, reachable only inside
//! it). The reference manual orders fallback CDN first, then file storage;
//! [`in_fallback_order`] puts a publication's origins in that order
//! whatever order they were typed in.

use serde::{Deserialize, Serialize};

/// The kind of an origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OriginKind {
    /// A content delivery network: tried first, and the only kind a client
    /// off the corporate network is given.
    Cdn,
    /// The enterprise's file storage (a share, the server's embedded file
    /// storage): tried after every CDN.
    FileStorage,
}

impl OriginKind {
    /// The kind of an origin given without one (published by an earlier
    /// version, or with `--origin`): `file://` URLs and the server's own
    /// file storage (`own_storage`, its base URL) are file storage,
    /// anything else a CDN.
    pub fn infer(url: &str, own_storage: Option<&str>) -> Self {
        let own = own_storage.is_some_and(|base| {
            let base = base.trim_end_matches('/');
            url.strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
        });
        if url.starts_with("file://") || own {
            OriginKind::FileStorage
        } else {
            OriginKind::Cdn
        }
    }

    /// Its name for people: `cdn` or `file storage`.
    pub fn name(self) -> &'static str {
        match self {
            OriginKind::Cdn => "cdn",
            OriginKind::FileStorage => "file storage",
        }
    }
}

/// One origin of a publication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Its URL: `http(s)://` or `file://`.
    pub url: String,
    /// Its kind.
    pub kind: OriginKind,
}

/// `origins` in fallback order: every CDN, then every file storage, each
/// kind in the order given.
pub fn in_fallback_order(mut origins: Vec<Origin>) -> Vec<Origin> {
    origins.sort_by_key(|o| o.kind);
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str, kind: OriginKind) -> Origin {
        Origin {
            url: url.into(),
            kind,
        }
    }

    #[test]
    fn cdns_come_before_file_storage_whatever_order_they_were_typed_in() {
        let typed = vec![
            origin("file:///srv/a", OriginKind::FileStorage),
            origin("https://cdn-1/a", OriginKind::Cdn),
            origin("https://files/a", OriginKind::FileStorage),
            origin("https://cdn-2/a", OriginKind::Cdn),
        ];
        let urls: Vec<String> = in_fallback_order(typed)
            .into_iter()
            .map(|o| o.url)
            .collect();
        assert_eq!(
            urls,
            [
                "https://cdn-1/a",
                "https://cdn-2/a",
                "file:///srv/a",
                "https://files/a"
            ]
        );
    }

    #[test]
    fn an_origin_without_a_kind_is_file_storage_if_local_or_the_servers_own() {
        let own = Some("https://server:34330/");
        assert_eq!(
            OriginKind::infer("file:///srv/a", own),
            OriginKind::FileStorage
        );
        assert_eq!(
            OriginKind::infer("https://server:34330/pkg/a", own),
            OriginKind::FileStorage
        );
        assert_eq!(
            OriginKind::infer("https://server:34330x/a", own),
            OriginKind::Cdn,
            "only below the base URL"
        );
        assert_eq!(
            OriginKind::infer("https://cdn.example/a", None),
            OriginKind::Cdn
        );
    }
}
