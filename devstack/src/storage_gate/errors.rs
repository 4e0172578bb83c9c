//! Errors as Azure Storage answers them: an XML body, `x-ms-error-code`, a request id, and the
//! bearer challenge on 401.

use crate::jwt::TENANT_ID;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use time::OffsetDateTime;

/// An error as Azure Storage answers it: XML body and `x-ms-error-code`.
pub(super) fn storage_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let request_id = uuid::Uuid::new_v4();
    let time = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut response = HttpResponse::build(status);
    response
        .insert_header(("x-ms-error-code", code))
        .insert_header(("x-ms-request-id", request_id.to_string()))
        .content_type("application/xml");
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((
            "WWW-Authenticate",
            format!(
                "Bearer authorization_uri=https://login.microsoftonline.com/{TENANT_ID}/oauth2/authorize \
                 resource_id=https://storage.azure.com"
            ),
        ));
    }
    response.body(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\n\
         RequestId:{request_id}\nTime:{time}</Message></Error>"
    ))
}
