//! The macros of the Altan contract SDK. Use them through `altan_sdk`, which re-exports them.
//!
//! `#[contract]` goes on two items of a contract crate:
//!
//! - the **storage struct**, whose fields are `Lazy` and `Mapping` values: each field gets a
//!   one-byte key prefix in declaration order (so reordering fields changes the layout);
//! - its **impl**, whose `pub fn` methods become the contract's methods, called by selector (the
//!   first four bytes of blake3 of the method's name) with SCALE-encoded arguments. One method may
//!   be `#[constructor]` (run once, at deployment); `#[payable]` methods accept value, others
//!   revert when sent any; `&self` methods are read-only (storage writes need `&mut self`).
//!   `#[contract(reentrant)]` on the impl lets the contract be re-entered.
//!
//! The impl macro generates: the dispatchers; on `wasm32`, the `call` and `deploy` exports and an
//! `altan.interface` custom section describing the methods (unless the crate's `as-dependency`
//! feature is on, for contracts used by other contracts); `NameRef`, a typed reference for calling
//! a deployed instance; and, off chain, `Name::CODE` for the SDK's test chain.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    Data, DeriveInput, Error, Fields, FnArg, GenericArgument, ImplItem, ImplItemFn, Item, ItemImpl,
    ItemStruct, LitStr, Pat, PathArguments, ReturnType, Type, Visibility, parse_macro_input,
};

/// Marks a contract's storage struct and its impl. See the crate documentation.
#[proc_macro_attribute]
pub fn contract(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = Tokens::from(attr);
    let result = match parse_macro_input!(item as Item) {
        Item::Struct(item) => storage(attr, item),
        Item::Impl(item) => methods(attr, item),
        other => Err(Error::new(other.span(), "#[contract] goes on a struct or its impl")),
    };
    result.unwrap_or_else(Error::into_compile_error).into()
}

fn selector(name: &str) -> [u8; 4] {
    let hash = blake3::hash(name.as_bytes());
    let mut out = [0; 4];
    out.copy_from_slice(&hash.as_bytes()[..4]);
    out
}

fn storage(attr: Tokens, item: ItemStruct) -> syn::Result<Tokens> {
    if !attr.is_empty() {
        return Err(Error::new(attr.span(), "#[contract] on a struct takes no arguments"));
    }
    let Fields::Named(fields) = &item.fields else {
        return Err(Error::new(item.span(), "a contract's storage struct needs named fields"));
    };
    if fields.named.len() > 256 {
        return Err(Error::new(item.span(), "a contract's storage has at most 256 fields"));
    }
    let name = &item.ident;
    let inits = fields.named.iter().enumerate().map(|(index, field)| {
        let ident = &field.ident;
        let ty = &field.ty;
        let prefix = index as u8;
        quote! { #ident: <#ty>::new(&[#prefix]) }
    });
    Ok(quote! {
        #item

        impl #name {
            #[doc(hidden)]
            pub const fn __altan_storage() -> Self {
                #name { #(#inits),* }
            }
        }
    })
}

/// A method of the contract, as the dispatcher sees it.
struct Method {
    ident: syn::Ident,
    name: String,
    args: Vec<(syn::Ident, Type)>,
    output: Option<Type>,
    returns_result: bool,
    mutates: bool,
    payable: bool,
}

fn take_attr(method: &mut ImplItemFn, name: &str) -> bool {
    let before = method.attrs.len();
    method.attrs.retain(|attr| !attr.path().is_ident(name));
    method.attrs.len() != before
}

/// `T` of a `Result<T, E>` type, if it is one.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}

fn method(item: &mut ImplItemFn) -> syn::Result<Method> {
    let mut mutates = false;
    let mut args = Vec::new();
    let mut has_self = false;
    for input in &item.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                if receiver.reference.is_none() {
                    return Err(Error::new(
                        receiver.span(),
                        "contract methods take &self or &mut self",
                    ));
                }
                mutates = receiver.mutability.is_some();
                has_self = true;
            }
            FnArg::Typed(typed) => {
                let Pat::Ident(ident) = &*typed.pat else {
                    return Err(Error::new(typed.pat.span(), "arguments must be plain names"));
                };
                args.push((ident.ident.clone(), (*typed.ty).clone()));
            }
        }
    }
    if !has_self {
        return Err(Error::new(item.sig.span(), "contract methods take &self or &mut self"));
    }
    if !item.sig.generics.params.is_empty() || item.sig.asyncness.is_some() {
        return Err(Error::new(item.sig.span(), "contract methods cannot be generic or async"));
    }
    let output = match &item.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    let returns_result = output.as_ref().is_some_and(|ty| result_ok_type(ty).is_some());
    let payable = take_attr(item, "payable");
    Ok(Method {
        ident: item.sig.ident.clone(),
        name: item.sig.ident.to_string(),
        args,
        output,
        returns_result,
        mutates,
        payable,
    })
}

fn type_name(ty: &Type) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn method_json(method: &Method, selector: Option<[u8; 4]>) -> String {
    let args: Vec<String> = method
        .args
        .iter()
        .map(|(name, ty)| {
            format!(
                "{{\"name\":{},\"type\":{}}}",
                json_string(&name.to_string()),
                json_string(&type_name(ty))
            )
        })
        .collect();
    let returns = method.output.as_ref().map(type_name).unwrap_or_else(|| "()".into());
    let selector = selector
        .map(|s| format!("\"selector\":\"0x{:02x}{:02x}{:02x}{:02x}\",", s[0], s[1], s[2], s[3]))
        .unwrap_or_default();
    format!(
        "{{\"name\":{},{selector}\"args\":[{}],\"returns\":{},\"mutates\":{},\"payable\":{}}}",
        json_string(&method.name),
        args.join(","),
        json_string(&returns),
        method.mutates,
        method.payable
    )
}

/// The statement that runs `method` on `contract` and returns its result.
fn invoke(method: &Method, decode_from: Tokens) -> Tokens {
    let ident = &method.ident;
    let arg_names: Vec<_> = method.args.iter().map(|(name, _)| name).collect();
    let arg_types: Vec<_> = method.args.iter().map(|(_, ty)| ty).collect();
    let payable =
        if method.payable { quote!() } else { quote!(::altan_sdk::__private::non_payable();) };
    let binding = if method.mutates { quote!(let mut contract) } else { quote!(let contract) };
    let finish = match (&method.output, method.returns_result) {
        (None, _) => quote!(let () = result;),
        (Some(_), true) => quote!(::altan_sdk::__private::finish_result(result);),
        (Some(_), false) => quote!(::altan_sdk::__private::finish_value(&result);),
    };
    quote! {
        #payable
        let (#(#arg_names,)*): (#(#arg_types,)*) = ::altan_sdk::__private::decode_args(#decode_from);
        #binding = Self::__altan_storage();
        let result = contract.#ident(#(#arg_names),*);
        #finish
    }
}

fn methods(attr: Tokens, mut item: ItemImpl) -> syn::Result<Tokens> {
    let reentrant = match attr.to_string().as_str() {
        "" => false,
        "reentrant" => true,
        _ => return Err(Error::new(attr.span(), "the only argument is `reentrant`")),
    };
    let Type::Path(self_path) = &*item.self_ty else {
        return Err(Error::new(
            item.self_ty.span(),
            "#[contract] impl must be for the storage struct",
        ));
    };
    let contract = self_path.path.segments.last().map(|s| s.ident.clone()).ok_or_else(|| {
        Error::new(item.self_ty.span(), "#[contract] impl must be for the storage struct")
    })?;
    let contract_name = contract.to_string();

    let mut constructor = None;
    let mut messages = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(function) = impl_item else { continue };
        let is_constructor = take_attr(function, "constructor");
        if is_constructor {
            // A constructor named `new` that takes `&mut self` is the SDK's convention, not the
            // std one clippy checks for.
            function.attrs.push(syn::parse_quote!(#[allow(clippy::new_ret_no_self)]));
        }
        if !matches!(function.vis, Visibility::Public(_)) {
            if is_constructor {
                return Err(Error::new(function.sig.span(), "the constructor must be pub"));
            }
            continue;
        }
        let parsed = method(function)?;
        if is_constructor {
            if constructor.is_some() {
                return Err(Error::new(
                    function.sig.span(),
                    "only one method can be #[constructor]",
                ));
            }
            if !parsed.mutates {
                return Err(Error::new(function.sig.span(), "the constructor takes &mut self"));
            }
            constructor = Some(parsed);
        } else {
            messages.push(parsed);
        }
    }

    let mut seen = std::collections::BTreeMap::new();
    for message in &messages {
        if let Some(other) = seen.insert(selector(&message.name), &message.name) {
            return Err(Error::new(
                Span::call_site(),
                format!("methods {other} and {} share a selector", message.name),
            ));
        }
    }

    let arms = messages.iter().map(|message| {
        let [a, b, c, d] = selector(&message.name);
        let body = invoke(message, quote!(args));
        quote! { [#a, #b, #c, #d] => { #body } }
    });
    let deploy_fn = constructor.as_ref().map(|constructor| {
        let body = invoke(constructor, quote!(&input));
        quote! {
            #[doc(hidden)]
            pub fn __altan_deploy() {
                let input = ::altan_sdk::env::input();
                #body
            }
        }
    });

    let interface = format!(
        "{{\"name\":{},\"reentrant\":{},\"constructor\":{},\"methods\":[{}]}}",
        json_string(&contract_name),
        reentrant,
        constructor.as_ref().map(|c| method_json(c, None)).unwrap_or_else(|| "null".into()),
        messages
            .iter()
            .map(|m| method_json(m, Some(selector(&m.name))))
            .collect::<Vec<_>>()
            .join(",")
    );
    let interface_bytes = interface.as_bytes();
    let interface_len = interface_bytes.len();
    let interface_literal = syn::LitByteStr::new(interface_bytes, Span::call_site());

    let wasm = quote!(all(target_arch = "wasm32", not(feature = "as-dependency")));
    let deploy_export = constructor.as_ref().map(|_| {
        quote! {
            /// The constructor entry point the chain calls at deployment.
            #[cfg(#wasm)]
            #[allow(unsafe_code)]
            #[unsafe(no_mangle)]
            pub extern "C" fn deploy() {
                #contract::__altan_deploy()
            }
        }
    });
    let reentrant_section = reentrant.then(|| {
        quote! {
            #[cfg(#wasm)]
            #[allow(unsafe_code)]
            #[used]
            #[unsafe(link_section = "altan.reentrant")]
            static __ALTAN_REENTRANT: [u8; 1] = [1];
        }
    });
    let deploy_code =
        if constructor.is_some() { quote!(Some(#contract::__altan_deploy)) } else { quote!(None) };

    let reference = format_ident!("{}Ref", contract);
    let ref_methods = messages.iter().map(|message| {
        let ident = &message.ident;
        let [a, b, c, d] = selector(&message.name);
        let params = message.args.iter().map(|(name, ty)| quote!(#name: #ty));
        let names: Vec<_> = message.args.iter().map(|(name, _)| name).collect();
        let returns = match &message.output {
            None => quote!(()),
            Some(ty) => match result_ok_type(ty) {
                Some(ok) => quote!(#ok),
                None => quote!(#ty),
            },
        };
        let doc = LitStr::new(&format!("Calls `{}` on the referenced contract.", message.name), Span::call_site());
        quote! {
            #[doc = #doc]
            pub fn #ident(&self, #(#params),*) -> ::core::result::Result<#returns, ::altan_sdk::env::CallError> {
                let input = ::altan_sdk::call_input([#a, #b, #c, #d], &(#(#names,)*));
                ::altan_sdk::env::call(&self.address, self.value, &input, self.gas)
            }
        }
    });
    let ref_doc = LitStr::new(
        &format!("A typed reference to a deployed `{contract_name}`."),
        Span::call_site(),
    );

    Ok(quote! {
        #item

        impl #contract {
            #[doc(hidden)]
            pub fn __altan_call() {
                let input = ::altan_sdk::env::input();
                if input.len() < 4 {
                    ::altan_sdk::__private::unknown_selector();
                }
                let (selector, args) = input.split_at(4);
                match [selector[0], selector[1], selector[2], selector[3]] {
                    #(#arms)*
                    _ => ::altan_sdk::__private::unknown_selector(),
                }
            }

            #deploy_fn

            /// The contract as the SDK's off-chain test chain runs it.
            #[cfg(not(target_arch = "wasm32"))]
            pub const CODE: ::altan_sdk::test::Code = ::altan_sdk::test::Code {
                name: #contract_name,
                deploy: #deploy_code,
                call: #contract::__altan_call,
                reentrant: #reentrant,
            };

            /// The contract's interface description (also embedded in its Wasm).
            pub const INTERFACE: &'static str = #interface;
        }

        /// The entry point the chain calls for every method.
        #[cfg(#wasm)]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn call() {
            #contract::__altan_call()
        }

        #deploy_export

        #[cfg(#wasm)]
        #[allow(unsafe_code)]
        #[used]
        #[unsafe(link_section = "altan.interface")]
        static __ALTAN_INTERFACE: [u8; #interface_len] = *#interface_literal;

        #reentrant_section

        #[doc = #ref_doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct #reference {
            address: ::altan_sdk::Address,
            value: ::altan_sdk::Balance,
            gas: u64,
        }

        impl #reference {
            /// The contract at `address`.
            pub fn at(address: ::altan_sdk::Address) -> Self {
                #reference { address, value: 0, gas: u64::MAX }
            }

            /// Its address.
            pub fn address(&self) -> ::altan_sdk::Address {
                self.address
            }

            /// The same reference, sending `value` with each call.
            pub fn with_value(self, value: ::altan_sdk::Balance) -> Self {
                #reference { value, ..self }
            }

            /// The same reference, giving each call at most `gas`.
            pub fn with_gas(self, gas: u64) -> Self {
                #reference { gas, ..self }
            }

            #(#ref_methods)*
        }
    })
}

/// A static holding `json` and a newline in the custom section `section` of the contract's Wasm.
/// The linker concatenates same-named sections, so each event or error type adds one line.
fn interface_section(section: &str, ident: &syn::Ident, json: &str) -> Tokens {
    let mut bytes = json.as_bytes().to_vec();
    bytes.push(b'\n');
    let len = bytes.len();
    let literal = syn::LitByteStr::new(&bytes, Span::call_site());
    quote! {
        #[cfg(all(target_arch = "wasm32", not(feature = "as-dependency")))]
        #[allow(unsafe_code, non_upper_case_globals)]
        #[used]
        #[unsafe(link_section = #section)]
        static #ident: [u8; #len] = *#literal;
    }
}

/// Implements `altan_sdk::Event`: topic 0 is blake3 of the type's name, then one topic per field
/// marked `#[topic]`; the data is the SCALE encoding of the whole value (derive `Encode` too).
#[proc_macro_derive(Event, attributes(topic))]
pub fn derive_event(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as DeriveInput);
    event(input).unwrap_or_else(Error::into_compile_error).into()
}

fn event(input: DeriveInput) -> syn::Result<Tokens> {
    let Data::Struct(data) = &input.data else {
        return Err(Error::new(input.span(), "events are structs"));
    };
    let name = &input.ident;
    let signature = blake3::hash(name.to_string().as_bytes());
    let signature = signature.as_bytes().iter();
    let mut topics = Vec::new();
    let mut fields_json = Vec::new();
    for (index, field) in data.fields.iter().enumerate() {
        let is_topic = field.attrs.iter().any(|a| a.path().is_ident("topic"));
        let field_name =
            field.ident.as_ref().map_or_else(|| index.to_string(), ToString::to_string);
        fields_json.push(format!(
            "{{\"name\":{},\"type\":{},\"topic\":{is_topic}}}",
            json_string(&field_name),
            json_string(&type_name(&field.ty))
        ));
        if is_topic {
            let member = match &field.ident {
                Some(ident) => quote!(#ident),
                None => {
                    let index = syn::Index::from(index);
                    quote!(#index)
                }
            };
            topics.push(quote!(::altan_sdk::__private::topic(&self.#member)));
        }
    }
    if topics.len() > 3 {
        return Err(Error::new(
            input.span(),
            "at most three #[topic] fields (four topics with the name)",
        ));
    }
    let hash = blake3::hash(name.to_string().as_bytes());
    let signature_hex: String = hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let interface = format!(
        "{{\"name\":{},\"signature\":\"0x{signature_hex}\",\"fields\":[{}]}}",
        json_string(&name.to_string()),
        fields_json.join(",")
    );
    let section =
        interface_section("altan.events", &format_ident!("__ALTAN_EVENT_{}", name), &interface);
    Ok(quote! {
        #section

        impl ::altan_sdk::Event for #name {
            const INTERFACE: &'static str = #interface;

            fn topics(&self) -> ::altan_sdk::__private::Vec<::altan_sdk::Hash> {
                let mut topics = ::altan_sdk::__private::Vec::new();
                topics.push(::altan_sdk::Hash([#(#signature),*]));
                #(topics.push(#topics);)*
                topics
            }
        }
    })
}

/// Implements `altan_sdk::ContractError` for an enum: the code is the variant's index, the message
/// its `#[error("...")]` attribute (or its name).
#[proc_macro_derive(ContractError, attributes(error))]
pub fn derive_contract_error(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as DeriveInput);
    contract_error(input).unwrap_or_else(Error::into_compile_error).into()
}

fn contract_error(input: DeriveInput) -> syn::Result<Tokens> {
    let Data::Enum(data) = &input.data else {
        return Err(Error::new(input.span(), "contract errors are enums"));
    };
    let name = &input.ident;
    let mut codes = Vec::new();
    let mut messages = Vec::new();
    let mut variants_json = Vec::new();
    for (index, variant) in data.variants.iter().enumerate() {
        let ident = &variant.ident;
        let pattern = match &variant.fields {
            Fields::Unit => quote!(#name::#ident),
            Fields::Unnamed(_) => quote!(#name::#ident(..)),
            Fields::Named(_) => quote!(#name::#ident { .. }),
        };
        let mut message = ident.to_string();
        for attr in &variant.attrs {
            if attr.path().is_ident("error") {
                message = attr.parse_args::<LitStr>()?.value();
            }
        }
        let code = index as u32;
        variants_json.push(format!(
            "{{\"code\":{code},\"name\":{},\"message\":{}}}",
            json_string(&ident.to_string()),
            json_string(&message)
        ));
        codes.push(quote!(#pattern => #code));
        messages.push(quote!(#pattern => #message));
    }
    let interface = format!(
        "{{\"name\":{},\"variants\":[{}]}}",
        json_string(&name.to_string()),
        variants_json.join(",")
    );
    let section =
        interface_section("altan.errors", &format_ident!("__ALTAN_ERROR_{}", name), &interface);
    Ok(quote! {
        #section

        impl ::altan_sdk::ContractError for #name {
            const INTERFACE: &'static str = #interface;

            fn code(&self) -> u32 {
                match self { #(#codes,)* }
            }

            fn message(&self) -> ::altan_sdk::__private::String {
                match self { #(#messages.into(),)* }
            }
        }
    })
}
