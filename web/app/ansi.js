// ANSI colours of a log line as text segments ({text, style}), parsed by ansi_up. The segments are
// rendered as Preact text nodes with styles set through the DOM, so no HTML is ever parsed from
// the log and the Content-Security-Policy (no inline style attributes) holds.
import { AnsiUp } from '/vendor/ansi_up/ansi_up.js';

class SegmentParser extends AnsiUp {
  constructor() {
    super();
    this.segments = [];
  }
  // ansi_up calls this for each run of text with its state; we keep the run instead of HTML.
  transform_to_html(fragment) {
    if (!fragment.text) return '';
    const style = {};
    if (fragment.fg) style.color = `rgb(${fragment.fg.rgb.join(',')})`;
    if (fragment.bg) style.backgroundColor = `rgb(${fragment.bg.rgb.join(',')})`;
    if (fragment.bold) style.fontWeight = 'bold';
    if (fragment.faint) style.opacity = '0.7';
    if (fragment.italic) style.fontStyle = 'italic';
    if (fragment.underline) style.textDecoration = 'underline';
    this.segments.push({ text: fragment.text, style: Object.keys(style).length ? style : null });
    return '';
  }
  // A hyperlink escape (OSC 8) shows its text only: a log never makes a link.
  process_hyperlink(packet) {
    this.segments.push({ text: packet.text, style: null });
    return '';
  }
}

const parser = new SegmentParser();
const ESCAPE = '\x1b';

// The segments of one line; each line starts with the default colours.
export function segmentsOf(line) {
  if (!line.includes(ESCAPE)) return [{ text: line, style: null }];
  parser.segments = [];
  parser.bold = parser.faint = parser.italic = parser.underline = false;
  parser.fg = parser.bg = null;
  parser._buffer = '';  // eslint-disable-line no-underscore-dangle -- an unfinished escape of another line
  parser.ansi_to_html(line);
  return parser.segments;
}

const ANSI_PATTERN = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

// The line without its escapes (what search looks at).
export function plainOf(line) {
  return line.includes(ESCAPE) ? line.replace(ANSI_PATTERN, '') : line;
}
