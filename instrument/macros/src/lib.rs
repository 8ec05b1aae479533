//! Procedural macros of `frameline-instrument`. Use them through its prelude.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, ItemFn, LitStr, Token};

/// Records a span around every call of a function. On an `async fn` the span covers the whole
/// future, from its first poll to its completion, across `.await`s and threads.
///
/// `#[span_fn]` names the span after the function; `#[span_fn("name")]` names it explicitly.
#[proc_macro_attribute]
pub fn span_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    let name_override = if attr.is_empty() {
        None
    } else {
        match syn::parse::<LitStr>(attr) {
            Ok(lit) => Some(lit.value()),
            Err(e) => return e.to_compile_error().into(),
        }
    };
    let mut function = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    let name = name_override.unwrap_or_else(|| function.sig.ident.to_string());
    let desc = quote! {
        static __FRAMELINE_SPAN: ::frameline_instrument::SpanDesc = ::frameline_instrument::SpanDesc {
            name: #name,
            target: ::core::module_path!(),
            file: ::core::file!(),
            line: ::core::line!(),
        };
    };
    let body = &function.block;
    let new_body = if function.sig.asyncness.is_some() {
        // Pin the async block's output to the function's return type, so `?` and `return`
        // inside the body infer as they would in the function itself.
        let fake_return = match &function.sig.output {
            syn::ReturnType::Type(_, ty) if !contains_impl_trait(ty) => quote! {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                if false {
                    let __frameline_ret: #ty = loop {};
                    return __frameline_ret;
                }
            },
            syn::ReturnType::Default => quote! {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                if false {
                    return loop {};
                }
            },
            _ => quote! {},
        };
        quote! {{
            #desc
            ::frameline_instrument::InstrumentedFuture::new(&__FRAMELINE_SPAN, async move {
                #fake_return
                #body
            })
            .await
        }}
    } else {
        quote! {{
            #desc
            let __frameline_guard = ::frameline_instrument::SpanGuard::new(&__FRAMELINE_SPAN);
            #body
        }}
    };
    function.block = match syn::parse2(new_body) {
        Ok(block) => Box::new(block),
        Err(e) => return e.to_compile_error().into(),
    };
    quote!(#function).into()
}

fn contains_impl_trait(ty: &syn::Type) -> bool {
    quote!(#ty).to_string().contains("impl ")
}

enum LogArgInput {
    Positional(Expr),
    Named(Ident, Expr),
}

struct LogInput {
    krate: TokenTree,
    level: Ident,
    target: Option<Expr>,
    format: LitStr,
    args: Vec<LogArgInput>,
}

impl Parse for LogInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let krate: TokenTree = input.parse()?;
        input.parse::<Token![,]>()?;
        let level: Ident = input.parse()?;
        input.parse::<Token![,]>()?;
        let mut target = None;
        if input.peek(Ident) && input.peek2(Token![:]) && !input.peek2(Token![::]) {
            let key: Ident = input.parse()?;
            if key != "target" {
                return Err(syn::Error::new(key.span(), "expected `target: \"...\",`"));
            }
            input.parse::<Token![:]>()?;
            target = Some(input.parse::<Expr>()?);
            input.parse::<Token![,]>()?;
        }
        let format: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a format string literal, as in `info!(\"x = {}\", x)`",
            )
        })?;
        let mut args = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
                let name: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                args.push(LogArgInput::Named(name, input.parse()?));
            } else {
                args.push(LogArgInput::Positional(input.parse()?));
            }
        }
        Ok(Self {
            krate,
            level,
            target,
            format,
            args,
        })
    }
}

/// One `{…}` of a format string: which argument, and its spec if it has one.
struct Placeholder {
    arg: PlaceholderArg,
    spec: String,
}

enum PlaceholderArg {
    Next,
    Index(usize),
    Name(String),
}

/// Splits a format string into a template of `{}` and its placeholders; `None` when it uses
/// something the template form cannot express (width/precision from arguments).
fn parse_format(format: &str) -> Result<Option<(String, Vec<Placeholder>)>, String> {
    let mut template = String::with_capacity(format.len());
    let mut placeholders = Vec::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                template.push_str("{{");
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                template.push_str("}}");
            }
            '{' => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => inner.push(c),
                        None => return Err("unterminated `{` in format string".to_owned()),
                    }
                }
                let (arg, spec) = inner.split_once(':').unwrap_or((&inner, ""));
                let arg = arg.trim();
                if spec.contains('$') || spec.contains('*') {
                    return Ok(None);
                }
                let arg = if arg.is_empty() {
                    PlaceholderArg::Next
                } else if let Ok(index) = arg.parse() {
                    PlaceholderArg::Index(index)
                } else {
                    PlaceholderArg::Name(arg.to_owned())
                };
                placeholders.push(Placeholder {
                    arg,
                    spec: spec.to_owned(),
                });
                template.push_str("{}");
            }
            '}' => return Err("unmatched `}` in format string (write `}}`)".to_owned()),
            c => template.push(c),
        }
    }
    Ok(Some((template, placeholders)))
}

/// Implementation of `trace!`..`error!`: `__log!($crate, Level, [target: T,] "fmt", args...)`.
#[doc(hidden)]
#[proc_macro]
pub fn __log(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as LogInput);
    match expand_log(input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_log(input: LogInput) -> syn::Result<TokenStream2> {
    let LogInput {
        krate,
        level,
        target,
        format,
        args,
    } = input;
    let lit_span = format.span();
    let target = match target {
        Some(t) => quote!(#t),
        None => quote!(::core::module_path!()),
    };
    let positional: Vec<&Expr> = args
        .iter()
        .filter_map(|a| match a {
            LogArgInput::Positional(e) => Some(e),
            LogArgInput::Named(..) => None,
        })
        .collect();
    let named = |name: &str| {
        args.iter().find_map(|a| match a {
            LogArgInput::Named(n, e) if n == name => Some(quote!(#e)),
            _ => None,
        })
    };
    let parsed = parse_format(&format.value()).map_err(|msg| syn::Error::new(lit_span, msg))?;
    if let Some((_, placeholders)) = &parsed {
        // Must match frameline_instrument::format::MAX_LOG_ARGS.
        if placeholders.len() > 127 {
            return Err(syn::Error::new(
                lit_span,
                "a log entry takes at most 127 arguments",
            ));
        }
    }
    let (template, writes) = match parsed {
        Some((template, placeholders)) => {
            let mut next = 0usize;
            let mut writes = Vec::new();
            for placeholder in placeholders {
                let expr = match &placeholder.arg {
                    PlaceholderArg::Next => {
                        let e = positional.get(next).ok_or_else(|| {
                            syn::Error::new(lit_span, "format string has more `{}` than arguments")
                        })?;
                        next += 1;
                        quote!(#e)
                    }
                    PlaceholderArg::Index(i) => {
                        let e = positional
                            .get(*i)
                            .ok_or_else(|| syn::Error::new(lit_span, format!("no argument {i}")))?;
                        quote!(#e)
                    }
                    PlaceholderArg::Name(name) => match named(name) {
                        Some(e) => e,
                        None => {
                            let ident = syn::parse_str::<Ident>(name).map_err(|_| {
                                syn::Error::new(lit_span, format!("invalid argument name `{name}`"))
                            })?;
                            let ident = Ident::new(&ident.to_string(), lit_span);
                            quote!(#ident)
                        }
                    },
                };
                if placeholder.spec.is_empty() {
                    writes.push(quote_spanned! {Span::call_site()=>
                        (&#krate::__private::Arg(&(#expr))).write_arg(__frameline_w);
                    });
                } else {
                    let spec_format = format!("{{:{}}}", placeholder.spec);
                    writes.push(quote! {
                        #krate::__private::write_display(
                            __frameline_w,
                            &::core::format_args!(#spec_format, #expr),
                        );
                    });
                }
            }
            (template, writes)
        }
        None => {
            let all_args = args.iter().map(|a| match a {
                LogArgInput::Positional(e) => quote!(#e),
                LogArgInput::Named(n, e) => quote!(#n = #e),
            });
            let write = quote! {
                #krate::__private::write_display(
                    __frameline_w,
                    &::core::format_args!(#format, #(#all_args),*),
                );
            };
            ("{}".to_owned(), vec![write])
        }
    };
    let closure_param = if writes.is_empty() {
        quote!(_)
    } else {
        quote!(__frameline_w)
    };
    Ok(quote! {{
        static __FRAMELINE_LOG: #krate::LogDesc = #krate::LogDesc {
            level: #krate::Level::#level,
            target: #target,
            template: #template,
            file: ::core::file!(),
            line: ::core::line!(),
        };
        if #krate::level_enabled(#krate::Level::#level) {
            #krate::__private::record_log(&__FRAMELINE_LOG, |#closure_param| {
                #[allow(unused_imports)]
                use #krate::__private::{CaptureDisplay as _, CaptureFast as _};
                #(#writes)*
            });
        }
    }})
}
