<#
.SYNOPSIS
Capture physical memory with WinPmem and upload it, compressed and hashed, as
an S3 multipart upload through presigned UploadPart URLs.

.DESCRIPTION
Run by the Responder-WindowsMemoryCapture document (Windows PowerShell 5.1 or
PowerShell 7, as SYSTEM). WinPmem writes a raw image to the fixed volume with
the most free space (it cannot write to a pipe); the image is then read once:
SHA-256 of the raw bytes, gzip (fastest level), SHA-256 of the compressed
bytes, cut into parts of PartSizeMiB, each PUT with Content-MD5 to its
presigned URL with bounded retries. The raw image is deleted afterwards.

Prints one JSON line (the report, or its summary when over 20,000
characters) and PUTs the full report to ResultUrl. Exits 0 only when an image
was captured and every part uploaded. No presigned URL is ever printed.
#>
[CmdletBinding()]
param(
	[Parameter(Mandatory = $true)][string] $CaseId,
	[Parameter(Mandatory = $true)][string] $WinpmemUrl,
	[Parameter(Mandatory = $true)][string] $WinpmemSha256,
	[Parameter(Mandatory = $true)][string] $PartUrlsUrl,
	[string] $PartSizeMiB = '64',
	[string] $Compression = 'gzip',
	[string] $ResultUrl = 'none'
)

Set-StrictMode -Version 1
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

$UrlPattern = '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/?&=%-]*$'

Add-Type -TypeDefinition @'
using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Threading;

public class ResponderPart {
	public int PartNumber;
	public long Size;
	public string Status = "failed";
	public int Attempts;
	public int HttpStatus;
	public string ContentMD5 = "";
	public string ETag = "";
}

public static class ResponderHttp {
	public static int MaxAttempts = 5;

	// Put uploads data[0..count) to a presigned URL with Content-MD5, retrying
	// transient failures with backoff. Never throws for HTTP errors.
	public static ResponderPart Put(string url, byte[] data, int count, string contentType) {
		ResponderPart p = new ResponderPart();
		p.Size = count;
		using (MD5 md5 = MD5.Create()) {
			p.ContentMD5 = Convert.ToBase64String(md5.ComputeHash(data, 0, count));
		}
		int delay = 2000;
		while (p.Attempts < MaxAttempts) {
			p.Attempts++;
			try {
				HttpWebRequest req = (HttpWebRequest)WebRequest.Create(url);
				req.Method = "PUT";
				req.ContentType = contentType;
				req.ContentLength = count;
				req.Headers["Content-MD5"] = p.ContentMD5;
				req.AllowWriteStreamBuffering = false;
				req.Timeout = 300000;
				req.ReadWriteTimeout = 300000;
				using (Stream s = req.GetRequestStream()) { s.Write(data, 0, count); }
				using (HttpWebResponse resp = (HttpWebResponse)req.GetResponse()) {
					p.HttpStatus = (int)resp.StatusCode;
					string etag = resp.Headers["ETag"];
					if (p.HttpStatus == 200 && !String.IsNullOrEmpty(etag)) {
						p.ETag = etag;
						p.Status = "ok";
						return p;
					}
				}
			} catch (WebException e) {
				HttpWebResponse r = e.Response as HttpWebResponse;
				p.HttpStatus = r == null ? 0 : (int)r.StatusCode;
				if (r != null) { r.Close(); }
				if (p.HttpStatus == 403 || p.HttpStatus == 404 || p.HttpStatus == 405 || p.HttpStatus == 411 || p.HttpStatus == 413) {
					return p;
				}
			} catch (IOException) {
				p.HttpStatus = 0;
			}
			if (p.Attempts < MaxAttempts) {
				Thread.Sleep(delay);
				delay = Math.Min(delay * 2, 30000);
			}
		}
		return p;
	}
}

// ResponderUploader receives the compressed stream, hashes it and uploads it
// in parts. A part that cannot be uploaded ends the stream with an IOException.
public class ResponderUploader : Stream {
	private readonly string[] urls;
	private readonly byte[] buf;
	private int used;
	private readonly SHA256 hash = SHA256.Create();
	public readonly List<ResponderPart> Parts = new List<ResponderPart>();
	public long CompressedBytes;
	public string CompressedSha256 = "";
	public string Error = "";
	public string Failure = "";
	public int FailedPart;

	public ResponderUploader(string[] urls, int partSize) {
		this.urls = urls;
		this.buf = new byte[partSize];
	}

	public override void Write(byte[] b, int off, int count) {
		hash.TransformBlock(b, off, count, null, 0);
		CompressedBytes += count;
		while (count > 0) {
			int n = Math.Min(count, buf.Length - used);
			Buffer.BlockCopy(b, off, buf, used, n);
			used += n; off += n; count -= n;
			if (used == buf.Length) { Upload(); }
		}
	}

	private void Upload() {
		int n = Parts.Count + 1;
		if (n > urls.Length) {
			Failure = "exhausted"; FailedPart = n;
			Error = "the stream needs more than the " + urls.Length + " part URLs provided";
			throw new IOException(Error);
		}
		ResponderPart p = ResponderHttp.Put(urls[n - 1], buf, used, "application/octet-stream");
		p.PartNumber = n;
		Parts.Add(p);
		used = 0;
		if (p.Status != "ok") {
			Failure = "upload"; FailedPart = n;
			Error = "part " + n + " could not be uploaded";
			throw new IOException(Error);
		}
	}

	// Finish uploads the last (possibly short) part and closes the hash.
	public void Finish() {
		if (used > 0 || Parts.Count == 0) { Upload(); }
		hash.TransformFinalBlock(new byte[0], 0, 0);
		CompressedSha256 = BitConverter.ToString(hash.Hash).Replace("-", "").ToLowerInvariant();
	}

	public override bool CanRead { get { return false; } }
	public override bool CanSeek { get { return false; } }
	public override bool CanWrite { get { return true; } }
	public override long Length { get { return CompressedBytes; } }
	public override long Position { get { return CompressedBytes; } set { throw new NotSupportedException(); } }
	public override void Flush() { }
	public override int Read(byte[] b, int o, int c) { throw new NotSupportedException(); }
	public override long Seek(long o, SeekOrigin s) { throw new NotSupportedException(); }
	public override void SetLength(long v) { throw new NotSupportedException(); }
}

public static class ResponderStreamer {
	// Run reads the image once: raw SHA-256, optional gzip, upload in parts.
	public static string Run(string path, ResponderUploader up, bool gzip, out long rawBytes) {
		rawBytes = 0;
		byte[] chunk = new byte[4 << 20];
		using (SHA256 raw = SHA256.Create())
		using (FileStream input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20)) {
			Stream sink = gzip ? (Stream)new GZipStream(up, CompressionLevel.Fastest, true) : up;
			int n;
			while ((n = input.Read(chunk, 0, chunk.Length)) > 0) {
				raw.TransformBlock(chunk, 0, n, null, 0);
				rawBytes += n;
				sink.Write(chunk, 0, n);
			}
			if (gzip) { sink.Dispose(); }
			up.Finish();
			raw.TransformFinalBlock(new byte[0], 0, 0);
			return BitConverter.ToString(raw.Hash).Replace("-", "").ToLowerInvariant();
		}
	}
}
'@

function Get-Sha256Hex([string] $Path) {
	return (Get-FileHash -Algorithm SHA256 -LiteralPath $Path).Hash.ToLowerInvariant()
}

function Write-Report($Report) {
	$file = Join-Path $script:Work 'report.json'
	$full = $Report | ConvertTo-Json -Depth 8 -Compress
	[IO.File]::WriteAllText($file, $full)
	$upload = [ordered]@{ status = 'skipped' }
	if ($ResultUrl -ne 'none' -and $ResultUrl -match $UrlPattern) {
		$bytes = [IO.File]::ReadAllBytes($file)
		$p = [ResponderHttp]::Put($ResultUrl, $bytes, $bytes.Length, 'application/json')
		$upload = [ordered]@{ status = $(if ($p.Status -eq 'ok') { 'succeeded' } else { 'failed' }); etag = $p.ETag; attempts = $p.Attempts; http_status = [string]$p.HttpStatus }
	}
	$Report['result_upload'] = $upload
	$out = $Report | ConvertTo-Json -Depth 8 -Compress
	if ($out.Length -gt 20000) {
		if ($Report.Contains('upload')) { $Report.Remove('upload') }
		$Report['stdout_truncated'] = $true
		$out = $Report | ConvertTo-Json -Depth 8 -Compress
	}
	Write-Output $out
}

$started = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
$report = [ordered]@{
	schema       = 'responder.windows-memory-capture/1'
	case_id      = $CaseId
	status       = 'failed'
	started_at   = $started
	image_format = 'raw'
	attempts     = @()
	warnings     = @()
}
$script:Work = $null
$exitCode = 1
try {
	if ($CaseId -notmatch '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$') { throw 'invalid case ID' }
	foreach ($u in @($WinpmemUrl, $PartUrlsUrl)) { if ($u -notmatch $UrlPattern) { throw 'a URL parameter is not a valid https URL' } }
	if ($ResultUrl -ne 'none' -and $ResultUrl -notmatch $UrlPattern) { throw 'ResultUrl is not a valid https URL' }
	if ($WinpmemSha256 -notmatch '^[a-f0-9]{64}$') { throw 'invalid WinPmem SHA-256' }
	if ($Compression -notmatch '^(gzip|none)$') { throw 'invalid compression' }
	$partMiB = [int]$PartSizeMiB
	if ($partMiB -lt 5 -or $partMiB -gt 5120) { throw 'part size must be 5 to 5120 MiB' }
	# Parts are held in memory; the .NET array limit caps a part below 2 GiB.
	if ($partMiB -gt 2047) { throw 'part size must be at most 2047 MiB on Windows' }

	$os = Get-CimInstance Win32_OperatingSystem
	$cs = Get-CimInstance Win32_ComputerSystem
	$report['instance'] = [ordered]@{
		hostname = $env:COMPUTERNAME; kernel = $os.Version; arch = $env:PROCESSOR_ARCHITECTURE
		os = $os.Caption; boot_id = $os.LastBootUpTime.ToUniversalTime().ToString('o'); mem_total_bytes = [int64]$cs.TotalPhysicalMemory
	}

	# The raw image needs as much room as memory: use the fixed volume with the most free space.
	$disk = Get-CimInstance Win32_LogicalDisk -Filter 'DriveType=3' | Sort-Object FreeSpace -Descending | Select-Object -First 1
	if ($null -eq $disk -or [int64]$disk.FreeSpace -lt ([int64]$cs.TotalPhysicalMemory + 1GB)) {
		throw 'no fixed volume has room for the raw image (memory size + 1 GiB)'
	}
	$script:Work = Join-Path ($disk.DeviceID + '\') ('ResponderCapture-' + [Guid]::NewGuid().ToString('N'))
	New-Item -ItemType Directory -Path $script:Work | Out-Null
	$report.warnings += "the raw image is written to $($script:Work) on local disk and deleted after upload"

	$client = New-Object Net.WebClient
	$exe = Join-Path $script:Work 'winpmem.exe'
	$client.DownloadFile($WinpmemUrl, $exe)
	$got = Get-Sha256Hex $exe
	if ($got -ne $WinpmemSha256) { throw "WinPmem SHA-256 mismatch: got $got, pinned $WinpmemSha256" }
	$urlList = Join-Path $script:Work 'part-urls.txt'
	$client.DownloadFile($PartUrlsUrl, $urlList)
	$urls = @(Get-Content -LiteralPath $urlList | Where-Object { $_ -ne '' })
	foreach ($u in $urls) { if ($u -notmatch $UrlPattern) { throw 'a part URL is not a valid https URL' } }
	if ($urls.Count -eq 0) { throw 'no part URLs' }

	# WinPmem 4 (winpmem_mini) takes the output path; go-winpmem has an acquire subcommand.
	$image = Join-Path $script:Work 'memory.raw'
	# Native stderr under ErrorActionPreference Stop would throw in Windows PowerShell.
	$ErrorActionPreference = 'Continue'
	$help = (& $exe --help 2>&1 | Out-String)
	$toolArgs = @($image)
	if ($help -match '(?m)^\s*acquire\b') { $toolArgs = @('acquire', $image) }
	$toolOut = (& $exe @toolArgs 2>&1 | Out-String)
	$toolExit = $LASTEXITCODE
	$ErrorActionPreference = 'Stop'
	$ranges = @()
	foreach ($m in [regex]::Matches($toolOut, 'Start 0x([0-9A-Fa-f]+) - Length 0x([0-9A-Fa-f]+)')) {
		$s = [Convert]::ToInt64($m.Groups[1].Value, 16); $l = [Convert]::ToInt64($m.Groups[2].Value, 16)
		$ranges += [ordered]@{ start = ('0x{0:x}' -f $s); end = ('0x{0:x}' -f ($s + $l - 1)); bytes = $l }
	}
	$tail = if ($toolOut.Length -gt 2000) { $toolOut.Substring($toolOut.Length - 2000) } else { $toolOut }
	$attempt = [ordered]@{ tool = 'winpmem'; source = 'winpmem driver'; status = 'failed'; failure = 'source'; raw_bytes = 0; source_exit_status = $toolExit; stderr_tail = $tail }
	$report.tool = [ordered]@{ name = 'winpmem'; memory_source = 'winpmem driver'; version = ''; sha256 = $WinpmemSha256 }
	# WinPmem's raw output pads the gaps between physical ranges with zeros.
	$report.ranges = [ordered]@{ iomem_readable = $false; system_ram = @(); captured = $ranges; skipped = @() }
	if ($toolExit -ne 0 -or -not (Test-Path -LiteralPath $image)) {
		$report.attempts = @($attempt)
		throw "WinPmem exited with status $toolExit"
	}
	Remove-Item -LiteralPath $exe -Force

	$up = [ResponderUploader]::new([string[]]$urls, [int]($partMiB * 1MB))
	$rawBytes = [int64]0
	$watch = [Diagnostics.Stopwatch]::StartNew()
	$rawSha = ''
	$streamError = ''
	try {
		$rawSha = [ResponderStreamer]::Run($image, $up, ($Compression -eq 'gzip'), [ref]$rawBytes)
	} catch {
		$streamError = if ($up.Error -ne '') { $up.Error } else { $_.Exception.Message }
	}
	$watch.Stop()
	$parts = @()
	foreach ($p in $up.Parts) {
		$parts += [ordered]@{ part_number = $p.PartNumber; size = $p.Size; status = $p.Status; attempts = $p.Attempts; http_status = $p.HttpStatus; curl_exit = 0; content_md5 = $p.ContentMD5; etag = $p.ETag }
	}
	$ok = ($streamError -eq '' -and $rawBytes -gt 0)
	$upload = [ordered]@{
		status = $(if ($ok) { 'succeeded' } else { 'failed' }); compression = $Compression
		compressor = $(if ($Compression -eq 'gzip') { 'GZipStream Fastest' } else { 'none' })
		raw_sha256 = $rawSha; raw_bytes = $rawBytes; compressed_sha256 = $up.CompressedSha256; compressed_bytes = $up.CompressedBytes
		pipeline_exit_status = ''; elapsed_seconds = [math]::Round($watch.Elapsed.TotalSeconds, 3)
		part_size = [int64]$partMiB * 1MB; part_count = $parts.Count; parts = $parts
	}
	if (-not $ok) {
		$upload['error'] = $streamError; $upload['failure'] = $(if ($up.Failure -ne '') { $up.Failure } else { 'source' })
		if ($up.FailedPart -gt 0) { $upload['failed_part'] = $up.FailedPart }
	}
	$attempt.status = $upload.status; $attempt.failure = $(if ($ok) { 'none' } else { $upload['failure'] }); $attempt.raw_bytes = $rawBytes
	$report.attempts = @($attempt)
	$report.upload = $upload
	$summary = [ordered]@{}
	foreach ($k in $upload.Keys) { if ($k -ne 'parts') { $summary[$k] = $upload[$k] } }
	$report.upload_summary = $summary
	if ($ok) { $report.status = 'succeeded'; $exitCode = 0 } else { $report.error = $streamError }
} catch {
	$report.error = $_.Exception.Message
} finally {
	if ($null -ne $script:Work -and (Test-Path -LiteralPath $script:Work)) {
		Remove-Item -LiteralPath (Join-Path $script:Work 'memory.raw') -Force -ErrorAction SilentlyContinue
	}
}
$report.finished_at = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
if ($null -eq $script:Work) { $script:Work = $env:TEMP }
Write-Report $report
if ($script:Work -ne $env:TEMP) { Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue }
exit $exitCode
