//! `Content-Type` by file extension. A fixed table of the types a web root
//! actually holds, close to nginx's `mime.types`; anything else is
//! `application/octet-stream`, which browsers download rather than sniff.
//! Textual types carry `charset=utf-8` so browsers need not guess.

const DEFAULT: &str = "application/octet-stream";

/// The `Content-Type` for a file name (the final path segment, raw bytes).
/// The extension is what follows the last `.`, compared case-insensitively.
pub(crate) fn content_type(file_name: &[u8]) -> &'static str {
    let Some(dot) = file_name.iter().rposition(|&b| b == b'.') else {
        return DEFAULT;
    };
    let ext = &file_name[dot + 1..];
    if ext.is_empty() || ext.len() > 12 {
        return DEFAULT;
    }
    let lower = ext.to_ascii_lowercase();
    by_extension(&lower).unwrap_or(DEFAULT)
}

fn by_extension(ext: &[u8]) -> Option<&'static str> {
    Some(match ext {
        b"html" | b"htm" | b"shtml" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" => "text/javascript; charset=utf-8",
        b"json" | b"map" => "application/json",
        b"webmanifest" => "application/manifest+json",
        b"txt" | b"text" | b"log" => "text/plain; charset=utf-8",
        b"md" | b"markdown" => "text/markdown; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"xml" => "text/xml; charset=utf-8",
        b"rss" => "application/rss+xml",
        b"atom" => "application/atom+xml",
        b"xhtml" => "application/xhtml+xml",
        b"svg" | b"svgz" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"avif" => "image/avif",
        b"ico" => "image/x-icon",
        b"bmp" => "image/bmp",
        b"tif" | b"tiff" => "image/tiff",
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        b"ttf" => "font/ttf",
        b"otf" => "font/otf",
        b"eot" => "application/vnd.ms-fontobject",
        b"wasm" => "application/wasm",
        b"pdf" => "application/pdf",
        b"zip" => "application/zip",
        b"gz" | b"tgz" => "application/gzip",
        b"tar" => "application/x-tar",
        b"bz2" => "application/x-bzip2",
        b"xz" => "application/x-xz",
        b"zst" => "application/zstd",
        b"7z" => "application/x-7z-compressed",
        b"mp4" | b"m4v" => "video/mp4",
        b"webm" => "video/webm",
        b"ogv" => "video/ogg",
        b"mov" => "video/quicktime",
        b"mp3" => "audio/mpeg",
        b"m4a" => "audio/mp4",
        b"ogg" | b"oga" | b"opus" => "audio/ogg",
        b"wav" => "audio/wav",
        b"flac" => "audio/flac",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn known_extensions_case_insensitive() {
        assert_eq!(content_type(b"index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"INDEX.HTM"), "text/html; charset=utf-8");
        assert_eq!(
            content_type(b"app.min.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(b"logo.PNG"), "image/png");
        assert_eq!(content_type(b"font.woff2"), "font/woff2");
        assert_eq!(content_type(b"data.json"), "application/json");
    }

    #[test]
    fn unknown_or_missing_extension_is_octet_stream() {
        assert_eq!(content_type(b"README"), "application/octet-stream");
        assert_eq!(
            content_type(b"archive.unknownext"),
            "application/octet-stream"
        );
        assert_eq!(content_type(b"trailingdot."), "application/octet-stream");
        assert_eq!(content_type(b".bashrc"), "application/octet-stream");
        assert_eq!(content_type(b"\xff\xfe.bin"), "application/octet-stream");
    }
}
