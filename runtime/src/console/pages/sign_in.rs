//! The sign-in page: a name and a password, sent by the script to
//! `POST /api/v1/session`; on success it goes to the Offices page.

use actix_web::HttpResponse;
use maud::html;

use super::layout::frame;

/// `GET /sign-in`.
pub async fn page() -> HttpResponse {
    super::page(frame(
        "Sign in",
        None,
        &html! {
            form #sign-in {
                label { "Name " input name="name" autocomplete="username" required; }
                label { "Password " input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    ))
}
