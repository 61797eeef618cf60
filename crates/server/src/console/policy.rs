//! Network policy: the ingress and egress rules, added and removed. Admins only.

use super::layout::{Checked, NoFields, csrf_field, failure, failure_page, needs_admin, page};
use super::session::SignedIn;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use ferry_proto::NewPolicyRule;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct RuleForm {
    #[serde(default)]
    direction: String,
    #[serde(default)]
    effect: String,
    #[serde(default)]
    pattern: String,
}

async fn render(
    node: &Node,
    signed_in: &SignedIn,
    problem: Option<Markup>,
    typed: RuleForm,
    status: StatusCode,
) -> Response {
    let session = &signed_in.session;
    let rules = match ferry_node::trust::list_policies(node, &session.caller).await {
        Ok(rules) => rules,
        Err(e) => return failure_page(node, session, "Network policy", &e),
    };
    let body = html! {
        h1 { "Network policy" }
        p.lead {
            "Nothing moves unless a rule allows it. Data from instance S to instance R needs S's "
            strong { "egress" } " rule for R and R's " strong { "ingress" } " rule for S; a matching "
            strong { "deny" } " wins over any allow."
        }
        @if let Some(problem) = problem { (problem) }
        @for direction in ["ingress", "egress"] {
            h2 { (direction) }
            @let these: Vec<_> = rules.iter().filter(|r| r.direction == direction).collect();
            @if these.is_empty() {
                p.empty { "No " (direction) " rule: " @if direction == "ingress" { "no data comes in." } @else { "no data goes out." } }
            } @else {
                table.list {
                    thead { tr { th { "Effect" } th { "Pattern" } th { "Added" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for rule in these {
                            tr data-rule=(rule.pattern) {
                                td { (rule.effect) }
                                td { code { (rule.pattern) } }
                                td { (rule.created_at) }
                                td {
                                    form method="post" action={ "/policy/" (rule.id) "/remove" } {
                                        (csrf_field(session))
                                        button.danger type="submit" aria-label={ "Remove " (rule.pattern) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a rule" }
        form.stacked method="post" action="/policy" {
            (csrf_field(session))
            label for="rule-direction" { "Direction" }
            select #rule-direction name="direction" {
                @for d in ["ingress", "egress"] { option value=(d) selected[typed.direction == d] { (d) } }
            }
            label for="rule-effect" { "Effect" }
            select #rule-effect name="effect" {
                @for e in ["allow", "deny"] { option value=(e) selected[typed.effect == e] { (e) } }
            }
            label for="rule-pattern" { "Pattern" }
            input #rule-pattern type="text" name="pattern" required value=(typed.pattern);
            p.hint {
                "An instance id (" code { "instance:01a2…" } "), an address or range ("
                code { "10.0.0.0/8" } ", " code { "127.0.0.1" } "), or a host name ("
                code { "gis.harbor.example" } ", " code { "*.harbor.example" } " for its subdomains). "
                "Internal addresses (loopback, private ranges) need an address rule of their own."
            }
            button type="submit" #add-rule { "Add rule" }
        }
    };
    (
        status,
        Html(page(node, Some(session), "Network policy", body).into_string()),
    )
        .into_response()
}

pub(crate) async fn list(State(node): State<Node>, signed_in: SignedIn) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    render(&node, &signed_in, None, RuleForm::default(), StatusCode::OK).await
}

pub(crate) async fn add(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<RuleForm>,
) -> Response {
    let typed = fields;
    let rule = NewPolicyRule {
        direction: typed.direction.clone(),
        effect: typed.effect.clone(),
        pattern: typed.pattern.clone(),
    };
    match ferry_node::trust::add_policy(&node, &signed_in.session.caller, rule).await {
        Ok(_) => {
            render(
                &node,
                &signed_in,
                None,
                RuleForm::default(),
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            render(
                &node,
                &signed_in,
                Some(problem),
                typed,
                crate::status_of(e.0.code),
            )
            .await
        }
    }
}

pub(crate) async fn remove(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let problem = match ferry_node::trust::remove_policy(&node, &signed_in.session.caller, id).await
    {
        Ok(_) => None,
        Err(e) => Some(failure(&e.0.message, e.0.code.as_str())),
    };
    render(
        &node,
        &signed_in,
        problem,
        RuleForm::default(),
        StatusCode::OK,
    )
    .await
}
