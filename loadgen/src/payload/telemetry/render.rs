//! Rendering one telemetry event as a template: realistic JSON whose
//! per-event fields (the id's sequence number and the timestamp) are
//! fixed-width placeholders, patched for each event by the pool.
//!
//! Everything else (kind, session, user, page, user agent, coordinates,
//! form values...) is drawn here, once per template, from small tables of
//! plausible values. The JSON is appended by hand: no serde, no `fmt`.

use fastrand::Rng;

use super::digits::{DEC_WIDTH, HEX_WIDTH};
use super::{EPOCH_MS, mix};

const PAGES: &[&str] = &[
    "/",
    "/pricing",
    "/products/shoes/running?color=blue&size=42",
    "/products/jackets/rain-shell",
    "/checkout/cart",
    "/checkout/payment",
    "/blog/2024/how-we-batch-events",
    "/account/settings/notifications",
    "/search?q=trail+runners&page=2",
    "/docs/getting-started/install",
];

const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/item?id=38712345",
    "https://example.com/newsletter/2024-01",
    "",
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
];

const VIEWPORTS: &[(u64, u64)] = &[
    (1920, 1080),
    (1440, 900),
    (1366, 768),
    (390, 844),
    (412, 915),
];

const CLICK_TARGETS: &[&str] = &[
    "button#add-to-cart",
    "a.nav-link[href='/pricing']",
    "div.product-card:nth-child(3) > img",
    "button.checkout-submit",
    "a#footer-careers",
];

const FORMS: &[(&str, &[&str])] = &[
    ("signup", &["email", "password", "display_name"]),
    ("checkout", &["card_name", "postcode", "street", "city"]),
    ("search", &["q"]),
    ("newsletter", &["email"]),
];

/// The kinds of event in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    PageView,
    Click,
    FormInput,
    Scroll,
    Heartbeat,
}

impl Kind {
    /// The kind at `percentile` (0..100) of the mix, whose weights in
    /// percent are: page views 20, clicks 25, form inputs 15, scrolls 25,
    /// heartbeats 15.
    pub(super) fn at_percentile(percentile: usize) -> Kind {
        match percentile {
            0..20 => Kind::PageView,
            20..45 => Kind::Click,
            45..60 => Kind::FormInput,
            60..85 => Kind::Scroll,
            _ => Kind::Heartbeat,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::PageView => "page_view",
            Kind::Click => "click",
            Kind::FormInput => "form_input",
            Kind::Scroll => "scroll",
            Kind::Heartbeat => "heartbeat",
        }
    }
}

/// Where a rendered template's placeholders are, as offsets from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placeholders {
    /// [`HEX_WIDTH`] hex digits: the id's sequence number.
    pub(super) seq_at: usize,
    /// [`DEC_WIDTH`] decimal digits: the `ts` in epoch milliseconds.
    pub(super) ts_at: usize,
}

/// Appends one event of `kind` for `producer` to `out`, drawing its fields
/// from `rng`, and says where its placeholders are.
///
/// The id is `{producer:08x}-{seq:016x}` and `ts` is 13 digits, as real
/// events would have; placeholders hold zeros and [`EPOCH_MS`] until patched.
pub(super) fn render(out: &mut Vec<u8>, rng: &mut Rng, producer: u32, kind: Kind) -> Placeholders {
    let start = out.len();
    let mut out = Json(out);
    out.raw(b"{\"id\":\"");
    out.hex(u64::from(producer), 8);
    out.raw(b"-");
    let seq_at = out.0.len() - start;
    out.hex(0, HEX_WIDTH);
    out.raw(b"\",\"ts\":");
    let ts_at = out.0.len() - start;
    out.dec(EPOCH_MS);
    debug_assert_eq!(out.0.len() - start - ts_at, DEC_WIDTH);
    out.string_field("type", kind.name());
    out.raw(b",\"session\":\"");
    // A producer plays a handful of concurrent visitors.
    let visitor = rng.u64(..8);
    out.hex(mix(u64::from(producer) << 8 | visitor), 16);
    out.raw(b"\",\"user\":\"u");
    out.dec(u64::from(producer) * 1_000 + visitor * 97 + 10_000);
    out.raw(b"\"");
    match kind {
        Kind::PageView => page_view(&mut out, rng),
        Kind::Click => click(&mut out, rng),
        Kind::FormInput => form_input(&mut out, rng),
        Kind::Scroll => scroll(&mut out, rng),
        Kind::Heartbeat => heartbeat(&mut out, rng),
    }
    out.raw(b"}");
    Placeholders { seq_at, ts_at }
}

fn page_view(out: &mut Json, rng: &mut Rng) {
    out.string_field("page", pick(rng, PAGES));
    out.string_field("referrer", pick(rng, REFERRERS));
    out.string_field("ua", pick(rng, USER_AGENTS));
    let (w, h) = pick(rng, VIEWPORTS);
    out.raw(b",\"viewport\":{\"w\":");
    out.dec(w);
    out.raw(b",\"h\":");
    out.dec(h);
    out.raw(b"}");
    out.number_field("load_ms", rng.u64(80..2_500));
}

fn click(out: &mut Json, rng: &mut Rng) {
    out.string_field("page", pick(rng, PAGES));
    out.string_field("target", pick(rng, CLICK_TARGETS));
    out.number_field("x", rng.u64(..1_920));
    out.number_field("y", rng.u64(..1_080));
    out.string_field("button", if rng.u8(..10) == 0 { "right" } else { "left" });
}

fn form_input(out: &mut Json, rng: &mut Rng) {
    let (form, fields) = pick(rng, FORMS);
    out.string_field("page", pick(rng, PAGES));
    out.string_field("form", form);
    out.string_field("field", pick(rng, fields));
    out.raw(b",\"value\":\"");
    let mut value = [0u8; 24];
    let len = rng.usize(1..value.len());
    for c in &mut value[..len] {
        *c = rng.alphanumeric() as u8;
    }
    out.raw(&value[..len]);
    out.raw(b"\"");
    out.raw(if rng.u8(..8) == 0 {
        b",\"valid\":false"
    } else {
        b",\"valid\":true"
    });
}

fn scroll(out: &mut Json, rng: &mut Rng) {
    out.string_field("page", pick(rng, PAGES));
    out.number_field("depth_pct", rng.u64(..=100));
    out.number_field("scroll_y", rng.u64(..12_000));
    out.string_field("direction", if rng.bool() { "down" } else { "up" });
}

fn heartbeat(out: &mut Json, rng: &mut Rng) {
    // The session's heartbeat count: one every 10 s for up to an hour.
    out.number_field("beat", rng.u64(1..=360));
    out.raw(if rng.u8(..4) == 0 {
        b",\"visible\":false"
    } else {
        b",\"visible\":true"
    });
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

/// Appends JSON pieces. Callers only pass strings that need no escaping
/// (the static tables above and alphanumerics).
struct Json<'a>(&'a mut Vec<u8>);

impl Json<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// `,"key":"value"`
    fn string_field(&mut self, key: &str, value: &str) {
        self.raw(b",\"");
        self.raw(key.as_bytes());
        self.raw(b"\":\"");
        self.raw(value.as_bytes());
        self.raw(b"\"");
    }

    /// `,"key":value`
    fn number_field(&mut self, key: &str, value: u64) {
        self.raw(b",\"");
        self.raw(key.as_bytes());
        self.raw(b"\":");
        self.dec(value);
    }

    fn dec(&mut self, value: u64) {
        self.raw(value.to_string().as_bytes());
    }

    /// Lowercase hex, zero-padded to `width` digits.
    fn hex(&mut self, value: u64, width: usize) {
        self.raw(format!("{value:0width$x}").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_sit_where_render_says() {
        let mut rng = Rng::with_seed(3);
        let mut out = b"prefix".to_vec();
        let at = render(&mut out, &mut rng, 0xab, Kind::Heartbeat);
        let event = &out[6..];
        assert!(event.starts_with(b"{\"id\":\"000000ab-"));
        assert_eq!(
            &event[at.seq_at..at.seq_at + HEX_WIDTH],
            b"0000000000000000"
        );
        assert_eq!(&event[at.ts_at..at.ts_at + DEC_WIDTH], b"1704067200000");
        let value: serde_json::Value = serde_json::from_slice(event).unwrap();
        assert_eq!(value["type"], "heartbeat");
    }

    #[test]
    fn percentiles_follow_the_weights() {
        let mut seen = [0usize; 5];
        for p in 0..100 {
            seen[Kind::at_percentile(p) as usize] += 1;
        }
        assert_eq!(seen, [20, 25, 15, 25, 15]);
    }
}
