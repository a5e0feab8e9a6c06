//! `capture BR PORT -w FILE`: a port's frames, streamed by the switch, written as pcapng
//! (with the `pcap-file` crate) for tshark, Wireshark or tcpdump to read.
//!
//! The file has one interface (the port: its name, Ethernet, the snap length, nanosecond
//! timestamps); each frame is an enhanced packet block with its original length and the
//! direction in its flags (inbound: the port received it; outbound: the switch sent it to
//! the port). The file is flushed after every response, so `-w -` piped into `tshark -r -`
//! sees frames as they come. At the end an interface statistics block records the frames
//! delivered and the frames the switch dropped because this reader was too slow; the same
//! two numbers are printed on standard error.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::{DataLink, Endianness, PcapError};
use proto::v1::{self, CaptureDirection, capture_response as cr};

use crate::cli;
use crate::connect::Client;
use crate::error::{Error, Result};

/// Longest `--duration`, in milliseconds (the switch's bound: 7 days).
const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;

/// epb_flags: inbound.
const FLAG_INBOUND: u32 = 1;
/// epb_flags: outbound.
const FLAG_OUTBOUND: u32 = 2;

/// The API's direction for the command line's.
pub fn direction(d: cli::CaptureDirection) -> CaptureDirection {
    match d {
        cli::CaptureDirection::Rx => CaptureDirection::Rx,
        cli::CaptureDirection::Tx => CaptureDirection::Tx,
        cli::CaptureDirection::Both => CaptureDirection::Both,
    }
}

/// `--duration SECS` in milliseconds (at least 1).
pub fn duration_ms(secs: f64) -> Result<u64> {
    if !(secs > 0.0 && secs * 1000.0 <= MAX_DURATION_MS as f64) {
        return Err(Error::Usage(format!(
            "--duration {secs}: must be more than 0 and at most {} seconds",
            MAX_DURATION_MS / 1000
        )));
    }
    Ok(((secs * 1000.0).round() as u64).max(1))
}

fn pcap_err(e: PcapError) -> Error {
    match e {
        PcapError::IoError(e) => Error::Output(e),
        e => Error::Stream(format!("writing pcapng: {e}")),
    }
}

/// Runs the capture, writing `file` (`-`: `stdout`), and prints the summary on stderr.
pub async fn capture(
    client: &mut Client,
    req: v1::CaptureRequest,
    file: &str,
    stdout: &mut dyn Write,
) -> Result<()> {
    let mut stream = client.capture(req).await?.into_inner();
    let started = match stream.message().await? {
        Some(v1::CaptureResponse {
            msg: Some(cr::Msg::Started(s)),
        }) => s,
        _ => return Err(Error::Stream("the capture did not start".into())),
    };
    let mut owned;
    let out: &mut dyn Write = if file == "-" {
        stdout
    } else {
        owned = std::io::BufWriter::new(std::fs::File::create(file).map_err(|e| Error::Input {
            path: file.to_string(),
            source: e,
        })?);
        &mut owned
    };
    let mut w = Pcap::start(out, &started)?;
    eprintln!(
        "flowctl: capturing on {} port {} ({}), snap length {}",
        started.bridge, started.port, started.port_no, started.snaplen
    );
    let end = tokio::select! {
        e = w.frames(&mut stream) => e?,
        _ = tokio::signal::ctrl_c() => None,
    };
    match end {
        Some(end) => {
            w.finish(end.captured, end.dropped)?;
            let slow = if end.dropped > 0 {
                " (slow reader)"
            } else {
                ""
            };
            eprintln!(
                "{} frames captured, {} dropped by the switch{slow}",
                end.captured, end.dropped
            );
        }
        None => {
            w.flush()?;
            eprintln!("{} frames captured (interrupted)", w.frames);
        }
    }
    Ok(())
}

/// The pcapng file being written.
struct Pcap<'a> {
    w: PcapNgWriter<&'a mut dyn Write>,
    frames: u64,
    last_ns: u64,
}

impl<'a> Pcap<'a> {
    /// Writes the section header and the port's interface block.
    fn start(out: &'a mut dyn Write, s: &v1::CaptureStarted) -> Result<Pcap<'a>> {
        // Little-endian always (see `finish`).
        let mut w = PcapNgWriter::with_endianness(out, Endianness::Little).map_err(pcap_err)?;
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: s.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(s.port.clone())),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(format!(
                    "bridge {} port {} ({})",
                    s.bridge, s.port, s.port_no
                ))),
                // Nanoseconds (10^-9), what the switch stamps and pcap-file writes.
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })
        .map_err(pcap_err)?;
        let mut p = Pcap {
            w,
            frames: 0,
            last_ns: 0,
        };
        p.flush()?;
        Ok(p)
    }

    /// Writes frames as they come; returns the last message, or `None` when the stream
    /// ended without one.
    async fn frames(
        &mut self,
        stream: &mut tonic::Streaming<v1::CaptureResponse>,
    ) -> Result<Option<v1::CaptureEnd>> {
        while let Some(m) = stream.message().await? {
            match m.msg {
                Some(cr::Msg::Frames(f)) => {
                    for f in &f.frames {
                        self.frame(f)?;
                    }
                    self.flush()?;
                }
                Some(cr::Msg::End(e)) => return Ok(Some(e)),
                _ => {}
            }
        }
        Err(Error::Stream(format!(
            "the capture ended without its summary after {} frames",
            self.frames
        )))
    }

    fn frame(&mut self, f: &v1::CapturedFrame) -> Result<()> {
        let flags = if f.direction == CaptureDirection::Tx as i32 {
            FLAG_OUTBOUND
        } else {
            FLAG_INBOUND
        };
        self.w
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(f.timestamp_ns),
                original_len: f.original_length.max(f.data.len() as u32),
                data: Cow::Borrowed(&f.data),
                options: vec![EnhancedPacketOption::Flags(flags)],
            })
            .map_err(pcap_err)?;
        self.frames += 1;
        self.last_ns = self.last_ns.max(f.timestamp_ns);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.w.get_mut().flush().map_err(Error::Output)
    }

    /// Writes the interface statistics (frames delivered, dropped by the switch) and
    /// flushes.
    fn finish(&mut self, captured: u64, dropped: u64) -> Result<()> {
        // pcap-file writes the block's 64-bit time as one integer, where pcapng has the
        // high word first: on the little-endian file `start` makes, swapping the halves
        // puts them in pcapng's order.
        self.w
            .write_pcapng_block(InterfaceStatisticsBlock {
                interface_id: 0,
                timestamp: self.last_ns.rotate_left(32),
                options: vec![
                    InterfaceStatisticsOption::IsbIfDrop(dropped),
                    InterfaceStatisticsOption::IsbUsrDeliv(captured),
                ],
            })
            .map_err(pcap_err)?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(duration_ms(1.5).ok(), Some(1500));
        assert_eq!(duration_ms(0.0001).ok(), Some(1));
        assert!(duration_ms(0.0).is_err());
        assert!(duration_ms(-1.0).is_err());
        assert!(duration_ms(f64::NAN).is_err());
        assert!(duration_ms(8.0 * 24.0 * 3600.0).is_err());
    }

    #[test]
    fn the_file_is_pcapng_with_the_frames_flags_and_lengths() {
        let mut buf = Vec::new();
        let started = v1::CaptureStarted {
            bridge: "br0".into(),
            port: "p1".into(),
            port_no: 1,
            snaplen: 4,
        };
        {
            let mut p = Pcap::start(&mut buf, &started).expect("start");
            for (i, dir) in [CaptureDirection::Rx, CaptureDirection::Tx]
                .iter()
                .enumerate()
            {
                p.frame(&v1::CapturedFrame {
                    timestamp_ns: 1_700_000_000_123_456_789 + i as u64,
                    direction: *dir as i32,
                    original_length: 60,
                    data: vec![7; 4],
                })
                .expect("frame");
            }
            p.finish(2, 5).expect("finish");
        }
        let mut r = pcap_file::pcapng::PcapNgReader::new(&buf[..]).expect("read");
        let mut seen = Vec::new();
        while let Some(b) = r.next_block() {
            if let pcap_file::pcapng::Block::EnhancedPacket(e) = b.expect("block") {
                let flags: Vec<u32> = e
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        EnhancedPacketOption::Flags(f) => Some(*f),
                        _ => None,
                    })
                    .collect();
                seen.push((e.timestamp.as_nanos(), e.original_len, e.data.len(), flags));
            }
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, 1_700_000_000_123_456_789);
        assert_eq!((seen[0].1, seen[0].2), (60, 4));
        assert_eq!(seen[0].3, vec![FLAG_INBOUND]);
        assert_eq!(seen[1].3, vec![FLAG_OUTBOUND]);
    }
}
