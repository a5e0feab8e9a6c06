//! The `add-flows` file reader: one flow per line, parsed in full before anything is sent.
//!
//! Lines are preprocessed as ovs-ofctl does (`ds_get_preprocessed_line`): everything from
//! the first `#` to the end of the line is a comment, and lines that are blank after that
//! are skipped. Line numbers count every line of the file, so an error (or a failed update
//! reported by the switch) points at `FILE:LINE` of the original file.
//!
//! Large files are parsed on every core (the parser is a pure function); the first bad line
//! in file order is reported, whichever thread found it.

use std::io::Read;

use proto::flow_text::parse_flow;
use proto::v1::Flow;

use crate::error::{Error, Result};

/// Below this many lines a file is parsed on the calling thread.
const PARALLEL_MIN_LINES: usize = 4096;

/// A parsed flow file.
#[derive(Debug, Default)]
pub struct FlowFile {
    /// The file name as given (`-` for stdin), for messages.
    pub name: String,
    /// The flows, in file order.
    pub flows: Vec<Flow>,
    /// `lines[i]` is the 1-based line number of `flows[i]`.
    pub lines: Vec<usize>,
    /// The file's text, to quote a line in a message.
    text: String,
}

impl FlowFile {
    /// Reads and parses `path` (`-` = stdin).
    pub fn read(path: &str) -> Result<FlowFile> {
        let text = if path == "-" {
            let mut s = String::new();
            std::io::stdin()
                .lock()
                .read_to_string(&mut s)
                .map_err(|source| Error::Input {
                    path: path.to_string(),
                    source,
                })?;
            s
        } else {
            std::fs::read_to_string(path).map_err(|source| Error::Input {
                path: path.to_string(),
                source,
            })?
        };
        FlowFile::parse(path, text)
    }

    /// Parses the text of a flow file named `name`.
    pub fn parse(name: &str, text: String) -> Result<FlowFile> {
        let items: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let flow = preprocess(line);
                (!flow.is_empty()).then_some((i + 1, flow))
            })
            .collect();

        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parsed = if threads > 1 && items.len() >= PARALLEL_MIN_LINES {
            let chunk_len = items.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = items
                    .chunks(chunk_len)
                    .map(|chunk| scope.spawn(move || parse_chunk(name, chunk)))
                    .collect();
                let mut flows = Vec::with_capacity(items.len());
                for h in handles {
                    match h.join() {
                        Ok(Ok(mut part)) => flows.append(&mut part),
                        Ok(Err(e)) => return Err(e),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                Ok(flows)
            })
        } else {
            parse_chunk(name, &items)
        }?;
        let lines = items.iter().map(|&(n, _)| n).collect();
        Ok(FlowFile {
            name: name.to_string(),
            flows: parsed,
            lines,
            text,
        })
    }

    /// `FILE:LINE` of the `index`-th flow.
    pub fn location(&self, index: usize) -> String {
        match self.lines.get(index) {
            Some(line) => format!("{}:{line}", self.name),
            None => format!("{}:?", self.name),
        }
    }

    /// The text of the `index`-th flow (comment stripped), for messages.
    pub fn flow_text(&self, index: usize) -> Option<&str> {
        let line = *self.lines.get(index)?;
        self.text.lines().nth(line - 1).map(preprocess)
    }
}

/// Strips the comment (from the first `#`) and surrounding white space.
fn preprocess(line: &str) -> &str {
    line.split('#').next().unwrap_or_default().trim()
}

fn parse_chunk(name: &str, items: &[(usize, &str)]) -> Result<Vec<Flow>> {
    let mut flows = Vec::with_capacity(items.len());
    for &(line, text) in items {
        match parse_flow(text) {
            Ok(f) => flows.push(f),
            Err(err) => {
                return Err(Error::FileParse {
                    file: name.to_string(),
                    line,
                    text: text.to_string(),
                    err,
                });
            }
        }
    }
    Ok(flows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "\
# a whole-line comment
   # an indented comment

table=0,priority=10,in_port=1,actions=output:2   # trailing comment
\t
priority=5,actions=drop
";
        let f = FlowFile::parse("flows.txt", text.to_string()).unwrap();
        assert_eq!(f.flows.len(), 2);
        assert_eq!(f.lines, [4, 6]);
        assert_eq!(f.flows[0].priority, 10);
        assert_eq!(f.flows[1].priority, 5);
        assert_eq!(f.location(1), "flows.txt:6");
        assert_eq!(
            f.flow_text(0),
            Some("table=0,priority=10,in_port=1,actions=output:2")
        );
    }

    #[test]
    fn crlf_lines() {
        let f = FlowFile::parse(
            "f",
            "priority=1,actions=drop\r\npriority=2,actions=drop\r\n".into(),
        )
        .unwrap();
        assert_eq!(f.lines, [1, 2]);
    }

    #[test]
    fn empty_file_has_no_flows() {
        let f = FlowFile::parse("f", "# nothing\n\n".into()).unwrap();
        assert!(f.flows.is_empty());
    }

    #[test]
    fn bad_line_reports_file_line_and_caret() {
        let text =
            "priority=1,actions=drop\n# comment\npriority=2,in_port=1,bogus=3,actions=drop\n";
        let e = FlowFile::parse("flows.txt", text.into()).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.prefixed());
        let msg = e.to_string();
        let lines: Vec<&str> = msg.lines().collect();
        assert!(lines[0].starts_with("flows.txt:3: "), "{msg}");
        assert_eq!(lines[1], "priority=2,in_port=1,bogus=3,actions=drop");
        let caret = lines[2];
        let col = caret.find('^').unwrap();
        assert!(lines[1][col..].starts_with("bogus"), "{msg}");
    }

    #[test]
    fn first_bad_line_wins_in_parallel_parse() {
        let mut text = String::new();
        for i in 0..20_000 {
            if i == 12_345 || i == 17_000 {
                text.push_str("priority=1,nw_dst=10.0.0.1,actions=drop\n");
            } else {
                text.push_str(&format!(
                    "priority={},ip,nw_dst=10.{}.{}.0/24,actions=output:{}\n",
                    i % 65536,
                    i / 256 % 256,
                    i % 256,
                    i % 7 + 1
                ));
            }
        }
        let e = FlowFile::parse("big", text).unwrap_err();
        assert!(e.to_string().starts_with("big:12346: "), "{e}");
    }

    #[test]
    fn large_file_keeps_order() {
        let mut text = String::new();
        for i in 0..10_000u32 {
            text.push_str(&format!("priority={i},actions=drop\n"));
            if i % 3 == 0 {
                text.push_str("# c\n");
            }
        }
        let f = FlowFile::parse("big", text).unwrap();
        assert_eq!(f.flows.len(), 10_000);
        for (i, flow) in f.flows.iter().enumerate() {
            assert_eq!(flow.priority as usize, i);
        }
        // Line numbers count comment lines too.
        assert_eq!(f.lines[0], 1);
        assert_eq!(f.lines[1], 3);
    }

    #[test]
    fn dump_flows_output_reads_back() {
        let text = "cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, idle_age=1, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2\n";
        let f = FlowFile::parse("dump", text.into()).unwrap();
        assert_eq!(f.flows[0].priority, 100);
    }
}
