//! Telemetry-shaped JSON events: the mix a web analytics client sends.
//!
//! Each event is one JSON object of roughly 100–400 bytes: page views (the
//! largest, with a user agent), clicks, form inputs, scrolls and heartbeats
//! (the smallest). Every event carries a unique `id` (producer index and
//! sequence number in hex) and a `ts` timestamp in epoch milliseconds.
//!
//! The JSON is appended by hand into a reused scratch buffer: no serde, no
//! `fmt` machinery, a few random draws per event, then one exact-capacity
//! copy out so the payload's heap size equals its weight.

use fastrand::Rng;

/// 2024-01-01T00:00:00Z in milliseconds: the synthetic timeline's origin, so
/// the timestamps are deterministic for a seed and look like real ones.
const EPOCH_MS: u64 = 1_704_067_200_000;

/// Large enough for the longest event, so appends never reallocate.
const SCRATCH_CAPACITY: usize = 512;

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
enum Kind {
    PageView,
    Click,
    FormInput,
    Scroll,
    Heartbeat,
}

impl Kind {
    /// Picks a kind with the mix's weights (percent): page views 20, clicks
    /// 25, form inputs 15, scrolls 25, heartbeats 15.
    fn pick(rng: &mut Rng) -> Kind {
        match rng.u8(..100) {
            0..20 => Kind::PageView,
            20..45 => Kind::Click,
            45..60 => Kind::FormInput,
            60..85 => Kind::Scroll,
            _ => Kind::Heartbeat,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::PageView => "page_view",
            Kind::Click => "click",
            Kind::FormInput => "form_input",
            Kind::Scroll => "scroll",
            Kind::Heartbeat => "heartbeat",
        }
    }
}

/// Writes telemetry events for one producer.
#[derive(Debug, Clone)]
pub(crate) struct TelemetryWriter {
    producer: u32,
    scratch: Vec<u8>,
}

impl TelemetryWriter {
    pub(crate) fn new(producer: u32) -> Self {
        Self {
            producer,
            scratch: Vec::with_capacity(SCRATCH_CAPACITY),
        }
    }

    /// The event with sequence number `seq`, as an exact-capacity `Vec`.
    pub(crate) fn event(&mut self, rng: &mut Rng, seq: u64) -> Vec<u8> {
        let mut out = Json(std::mem::take(&mut self.scratch));
        out.0.clear();
        let kind = Kind::pick(rng);
        out.raw(b"{\"id\":\"");
        out.hex(u64::from(self.producer), 8);
        out.raw(b"-");
        out.hex(seq, 16);
        out.raw(b"\",\"ts\":");
        // Wrapping: sequence numbers near u64::MAX must not panic in debug builds.
        out.dec(
            EPOCH_MS
                .wrapping_add(seq.wrapping_mul(37))
                .wrapping_add(rng.u64(..37)),
        );
        out.string_field("type", kind.name());
        out.raw(b",\"session\":\"");
        // A producer plays a handful of concurrent visitors.
        let visitor = rng.u64(..8);
        out.hex(mix(u64::from(self.producer) << 8 | visitor), 16);
        out.raw(b"\",\"user\":\"u");
        out.dec(u64::from(self.producer) * 1_000 + visitor * 97 + 10_000);
        out.raw(b"\"");
        match kind {
            Kind::PageView => page_view(&mut out, rng),
            Kind::Click => click(&mut out, rng),
            Kind::FormInput => form_input(&mut out, rng),
            Kind::Scroll => scroll(&mut out, rng),
            Kind::Heartbeat => heartbeat(&mut out, rng, seq),
        }
        out.raw(b"}");
        let payload = out.0.as_slice().to_vec();
        self.scratch = out.0;
        payload
    }
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

fn heartbeat(out: &mut Json, rng: &mut Rng, seq: u64) {
    out.number_field("beat", seq / 16);
    out.raw(if rng.u8(..4) == 0 {
        b",\"visible\":false"
    } else {
        b",\"visible\":true"
    });
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

/// A stable 64-bit scramble (splitmix64's finaliser).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Appends JSON pieces. Callers only pass strings that need no escaping
/// (the static tables above and alphanumerics).
struct Json(Vec<u8>);

impl Json {
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

    fn dec(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            // `value % 10` is below 10, so the cast keeps every bit.
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.raw(&digits[at..]);
    }

    /// Lowercase hex, zero-padded to `width` digits (at most 16).
    fn hex(&mut self, value: u64, width: u32) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 16];
        for (i, digit) in digits.iter_mut().enumerate() {
            *digit = DIGITS[((value >> ((15 - i) * 4)) & 0xf) as usize];
        }
        // One append rather than a capacity check per digit.
        self.raw(&digits[16 - width as usize..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_exactly() {
        let mut json = Json(Vec::new());
        for v in [0, 7, 10, 12_345, u64::MAX] {
            json.0.clear();
            json.dec(v);
            assert_eq!(json.0, v.to_string().as_bytes());
        }
        json.0.clear();
        json.hex(0x1a2f, 8);
        assert_eq!(json.0, b"00001a2f");
    }

    #[test]
    fn the_mix_covers_every_kind() {
        let mut rng = Rng::with_seed(1);
        let mut seen = [0usize; 5];
        for _ in 0..1_000 {
            seen[Kind::pick(&mut rng) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn events_fit_the_scratch_buffer() {
        let mut writer = TelemetryWriter::new(u32::MAX);
        let mut rng = Rng::with_seed(9);
        for seq in 0..5_000 {
            let len = writer.event(&mut rng, u64::MAX - seq).len();
            assert!((90..=SCRATCH_CAPACITY).contains(&len), "{len}");
        }
        assert_eq!(writer.scratch.capacity(), SCRATCH_CAPACITY);
    }
}
