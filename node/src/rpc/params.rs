//! Refuses a call whose parameters its method does not take, with -32602 (invalid params).
//!
//! jsonrpsee reads the parameters a method names and ignores any others, so `chain_head` with
//! `[1, 2, 3]` would be answered as if it had none: a client with a bug (or a version skew)
//! would never learn that its arguments went unread. This middleware checks every call, alone
//! or in a batch, against the method's parameters in [`super::openrpc::METHODS`]: positional
//! parameters may be at most as many as the method takes, and named ones only its names.
//! Whether each value is well formed is left to the method.

use std::collections::BTreeMap;

use jsonrpsee::MethodResponse;
use jsonrpsee::core::middleware::{
    Batch, BatchEntry, BatchEntryErr, Notification, ResponseFuture, RpcServiceT,
};
use jsonrpsee::types::error::INVALID_PARAMS_CODE;
use jsonrpsee::types::{ErrorObjectOwned, Request};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::openrpc::{METHODS, Param};

/// Checks the parameters of each call before the method reads them.
#[derive(Debug, Clone)]
pub struct StrictParams<S> {
    service: S,
}

impl<S> StrictParams<S> {
    /// Wraps the server's RPC service.
    pub fn new(service: S) -> StrictParams<S> {
        StrictParams { service }
    }
}

/// Why the parameters of a call to `method` are refused, if they are.
pub fn check(method: &str, params: Option<&RawValue>) -> Result<(), ErrorObjectOwned> {
    let Some(doc) = METHODS.iter().find(|m| m.name == method) else {
        // Unknown methods are the server's to refuse (-32601).
        return Ok(());
    };
    let Some(params) = params else { return Ok(()) };
    let refuse =
        |message: String| Err(ErrorObjectOwned::owned(INVALID_PARAMS_CODE, message, None::<()>));
    let text = params.get().trim_start();
    if text.starts_with('[') {
        let given: Vec<IgnoredAny> = match serde_json::from_str(params.get()) {
            Ok(given) => given,
            // The method reports malformed parameters in its own words.
            Err(_) => return Ok(()),
        };
        if given.len() > doc.params.len() {
            return refuse(format!(
                "{method} takes at most {} parameters ({}); {} were given",
                doc.params.len(),
                names(doc.params),
                given.len()
            ));
        }
    } else if text.starts_with('{') {
        let given: BTreeMap<String, IgnoredAny> = match serde_json::from_str(params.get()) {
            Ok(given) => given,
            Err(_) => return Ok(()),
        };
        if let Some(unknown) = given.keys().find(|k| !doc.params.iter().any(|p| p.0 == k.as_str()))
        {
            return refuse(format!(
                "{method} has no parameter named {unknown:?}; it takes {}",
                names(doc.params)
            ));
        }
    }
    Ok(())
}

fn names(params: &[Param]) -> String {
    if params.is_empty() {
        return "none".into();
    }
    params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

impl<S> RpcServiceT for StrictParams<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        match check(request.method_name(), request.params.as_deref()) {
            Ok(()) => ResponseFuture::future(self.service.call(request)),
            Err(error) => ResponseFuture::ready(MethodResponse::error(request.id, error)),
        }
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let refused = match entry {
                Ok(BatchEntry::Call(request)) => {
                    check(request.method_name(), request.params.as_deref())
                        .err()
                        .map(|error| BatchEntryErr::new(request.id.clone().into_owned(), error))
                }
                _ => None,
            };
            if let Some(refused) = refused {
                *entry = Err(refused);
            }
        }
        self.service.batch(batch)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(notification)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.into()).unwrap()
    }

    #[test]
    fn extra_positional_parameters_are_refused() {
        let error = check("chain_head", Some(&raw("[1,2,3]"))).unwrap_err();
        assert_eq!(error.code(), INVALID_PARAMS_CODE);
        assert!(error.message().contains("at most 0 parameters"), "{}", error.message());
        let error = check("chain_getBlock", Some(&raw("[1, true, 3]"))).unwrap_err();
        assert!(error.message().contains("at, full"), "{}", error.message());
    }

    #[test]
    fn the_parameters_a_method_takes_pass() {
        for (method, params) in [
            ("chain_head", "[]"),
            ("chain_head", "{}"),
            ("chain_getBlock", "[1]"),
            ("chain_getBlock", "[1, true]"),
            ("chain_getBlock", r#"{"at": 1, "full": true}"#),
            ("state_getAccount", r#"{"address": "0x00"}"#),
            // Unknown methods are for the server to refuse.
            ("no_such_method", "[1,2,3]"),
        ] {
            assert_eq!(check(method, Some(&raw(params))), Ok(()), "{method} {params}");
        }
        assert_eq!(check("chain_head", None), Ok(()));
    }

    #[test]
    fn unknown_named_parameters_are_refused() {
        let error = check("chain_getBlock", Some(&raw(r#"{"at": 1, "fulll": true}"#))).unwrap_err();
        assert_eq!(error.code(), INVALID_PARAMS_CODE);
        assert!(error.message().contains("\"fulll\""), "{}", error.message());
    }
}
