//! The frame of every page: the title, the navigation, who is signed in
//! (with the session's CSRF token in a `<meta>` the script reads), and
//! the page's body.

use maud::{DOCTYPE, Markup, html};

use crate::console::api::auth::Signed;

/// The pages in the navigation: path and title.
const NAVIGATION: &[(&str, &str)] = &[
    ("/offices", "Offices"),
    ("/clients", "Clients"),
    ("/contents", "Contents"),
    ("/topology", "Topology"),
    ("/health", "Health"),
    ("/audit", "Audit log"),
];

/// A page titled `title` for `signed` (nobody on the sign-in page), with
/// its session's CSRF token for the script.
pub fn frame(title: &str, signed: Option<&Signed>, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Branchline" }
                @if let Some(who) = signed {
                    meta name="csrf-token" content=(who.csrf);
                }
                link rel="stylesheet" href="/console.css";
                script src="/console.js" defer {}
            }
            body {
                header {
                    strong { "Branchline" }
                    @if let Some(who) = signed {
                        nav {
                            @for (path, name) in NAVIGATION {
                                a href=(path) class=[(*name == title).then_some("here")] { (name) }
                            }
                        }
                        span.who {
                            (who.name) " (" (who.role.name()) ") "
                            button #sign-out type="button" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    p #problem role="alert" hidden {}
                    (body)
                }
            }
        }
    }
}
