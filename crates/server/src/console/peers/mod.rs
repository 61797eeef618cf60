//! Peer Manager: every connection with its state, the other instance and what goes each way;
//! the selected one opens in the right-hand panel with its identity, security, history, the
//! policy check and the actions its state allows. The list (`list.rs`) is the page every step
//! comes back to; creating a request (`request.rs`), answering a code (`answer.rs`) and the
//! panel's actions (`actions.rs`) post to it. Admins only.

mod actions;
mod answer;
mod list;
mod panel;
mod request;
mod shown;

pub(crate) use actions::{
    activate, approve_security, confirm_delete, delete, disable, enable, narrow_sends,
    propose_security, reject_security,
};
pub(crate) use answer::{
    accept_response, approve, download_response_file, enter_code, enter_code_form, response_form,
};
pub(crate) use list::list;
pub(crate) use request::{create_request, invalidate, new_request_form, refresh};
