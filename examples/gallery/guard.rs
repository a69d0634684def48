//! Which photo a request names, and refusing everything else.
//!
//! The gallery serves a photo's pixels only by its library id (`/thumb/17`, `/view/17`), never
//! by a path from the request. A segment that is not a plain decimal id (`..`, `%2e%2e%2f…`,
//! `/etc/passwd`, `17.jpg`, `-1`, `+17`, an id beyond `u64`) is refused as a bad request, and a
//! well-formed id that the library does not hold is not found. Paths that do not match a route
//! at all (`/thumb/../../etc/passwd` as sent by a raw client) never reach a handler: the router
//! answers 404.
//!
//! A server on the loopback address is still reachable from web pages the browser opens: a
//! page on `evil.example` whose name is rebound to 127.0.0.1 (DNS rebinding) could read the
//! photos. So a gallery bound to loopback answers only requests whose `Host` names a loopback
//! address or `localhost` ([`host_allowed`]). And whatever the address, requests that the
//! browser marks as coming from another site (`Sec-Fetch-Site: cross-site` or `same-site`: an
//! `<img>` or a form on some other page pointing at the gallery) are refused
//! ([`fetch_site_allowed`]).

use glimpse::ImageId;
use std::path::PathBuf;

/// Why a request for a photo is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The segment is not a decimal photo id (HTTP 400).
    BadId,
    /// A well-formed id that the library does not hold (HTTP 404).
    Unknown,
}

impl Refusal {
    /// The HTTP status to answer with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadId => 400,
            Refusal::Unknown => 404,
        }
    }
}

/// Parses a photo id: 1 to 20 ASCII digits that fit a `u64`, nothing else (no sign, no
/// whitespace, no extension, no percent-encoding left over).
pub fn parse_id(segment: &str) -> Result<ImageId, Refusal> {
    if segment.is_empty() || segment.len() > 20 || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::BadId);
    }
    segment.parse().map_err(|_| Refusal::BadId)
}

/// The id and the path of the photo a segment names, when `lookup` (the library's
/// `Library::path`) holds it.
pub fn resolve(
    segment: &str,
    lookup: impl FnOnce(ImageId) -> Option<PathBuf>,
) -> Result<(ImageId, PathBuf), Refusal> {
    let id = parse_id(segment)?;
    let path = lookup(id).ok_or(Refusal::Unknown)?;
    Ok((id, path))
}

/// Whether a request with this `Host` header may be answered by a server bound to loopback:
/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port. A server bound to another
/// address (an explicit `--bind`) answers any host.
pub fn host_allowed(host: Option<&str>, bound_to_loopback: bool) -> bool {
    if !bound_to_loopback {
        return true;
    }
    let Some(host) = host else { return false };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.starts_with(':') => v6,
            _ => return false,
        }
    } else {
        host.split_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a request with this `Sec-Fetch-Site` header may be answered: from the gallery's
/// own page (`same-origin`), typed into the address bar (`none`), or from a client that does
/// not send the header (curl, scripts).
pub fn fetch_site_allowed(sec_fetch_site: Option<&str>) -> bool {
    matches!(sec_fetch_site, None | Some("same-origin" | "none"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(id: ImageId) -> Option<PathBuf> {
        (id == 7).then(|| PathBuf::from("/photos/seven.jpg"))
    }

    #[test]
    fn ids_the_library_holds_resolve_to_its_own_path() {
        assert_eq!(
            resolve("7", library),
            Ok((7, PathBuf::from("/photos/seven.jpg")))
        );
        assert_eq!(resolve("0007", library).map(|r| r.0), Ok(7));
    }

    #[test]
    fn ids_the_library_does_not_hold_are_not_found() {
        assert_eq!(resolve("8", library), Err(Refusal::Unknown));
        assert_eq!(
            resolve("18446744073709551615", library),
            Err(Refusal::Unknown)
        );
        assert_eq!(Refusal::Unknown.status(), 404);
    }

    #[test]
    fn traversal_and_anything_but_an_id_is_a_bad_request() {
        // What axum hands the handler after percent-decoding one segment.
        for segment in [
            "",
            "..",
            "../../etc/passwd",
            "..%2F..%2Fetc%2Fpasswd",
            "%2e%2e",
            "/etc/passwd",
            "7/../8",
            "7.jpg",
            "7 ",
            " 7",
            "+7",
            "-7",
            "0x7",
            "７", // full-width digit
            "18446744073709551616",
            "000000000000000000007",
            "7\0",
        ] {
            assert_eq!(
                resolve(segment, library),
                Err(Refusal::BadId),
                "{segment:?}"
            );
        }
        assert_eq!(Refusal::BadId.status(), 400);
    }

    #[test]
    fn a_loopback_gallery_answers_only_loopback_hosts() {
        for host in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "[::1]",
            "127.1.2.3:80",
        ] {
            assert!(host_allowed(Some(host), true), "{host}");
        }
        for host in [
            "evil.example:8080",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "192.168.1.5:8080",
            "[::1",
            "[::1]x",
            "",
        ] {
            assert!(!host_allowed(Some(host), true), "{host}");
        }
        assert!(!host_allowed(None, true));
        assert!(host_allowed(Some("photos.lan:8080"), false));
    }

    #[test]
    fn requests_from_other_sites_are_refused() {
        assert!(fetch_site_allowed(None));
        assert!(fetch_site_allowed(Some("same-origin")));
        assert!(fetch_site_allowed(Some("none")));
        assert!(!fetch_site_allowed(Some("cross-site")));
        assert!(!fetch_site_allowed(Some("same-site")));
        assert!(!fetch_site_allowed(Some("")));
    }
}
