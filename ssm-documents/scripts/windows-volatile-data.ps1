<#
.SYNOPSIS
Collect the volatile state of a Windows instance and upload it as a zip
through a presigned PUT URL.

.DESCRIPTION
Run by the Responder-WindowsVolatileData document (Windows PowerShell 5.1 or
PowerShell 7, as SYSTEM). Every section is a file under collection\ in the
zip, listed in collection\index.json with its source, status, size and
SHA-256. A section whose cmdlet is missing or fails is recorded and the
collection goes on.

Prints one JSON line (the report) and PUTs it to ResultUrl. Exits 0 when the
archive was uploaded. No presigned URL is ever printed.
#>
[CmdletBinding()]
param(
	[Parameter(Mandatory = $true)][string] $CaseId,
	[Parameter(Mandatory = $true)][string] $ArchiveUrl,
	[string] $ResultUrl = 'none',
	[string] $RecentDays = '7'
)

# Version 1 only: a property missing on one object (a process that exited) must not fail a section.
Set-StrictMode -Version 1
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
$UrlPattern = '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/?&=%-]*$'
$script:Sections = @()

function Get-Sha256Hex([string] $Path) {
	return (Get-FileHash -Algorithm SHA256 -LiteralPath $Path).Hash.ToLowerInvariant()
}

# Send-File PUTs a file with Content-MD5 in a bounded loop of attempts.
function Send-File([string] $Url, [string] $Path, [string] $ContentType) {
	$bytes = [IO.File]::ReadAllBytes($Path)
	$md5 = [Convert]::ToBase64String([Security.Cryptography.MD5]::Create().ComputeHash($bytes))
	$result = [ordered]@{ status = 'failed'; etag = ''; attempts = 0; http_status = 0; content_md5 = $md5 }
	$delay = 2
	while ($result.attempts -lt 5) {
		$result.attempts = $result.attempts + 1
		try {
			$req = [Net.HttpWebRequest][Net.WebRequest]::Create($Url)
			$req.Method = 'PUT'; $req.ContentType = $ContentType; $req.ContentLength = $bytes.Length
			$req.Headers['Content-MD5'] = $md5; $req.Timeout = 300000
			$s = $req.GetRequestStream(); $s.Write($bytes, 0, $bytes.Length); $s.Close()
			$resp = $req.GetResponse()
			$result.http_status = [int]$resp.StatusCode
			$result.etag = [string]$resp.Headers['ETag']
			$resp.Close()
			if ($result.http_status -eq 200 -and $result.etag -ne '') { $result.status = 'succeeded'; return $result }
		} catch {
			# .NET exceptions arrive wrapped (MethodInvocationException): find the WebException.
			$ex = $_.Exception
			while ($null -ne $ex -and -not ($ex -is [Net.WebException])) { $ex = $ex.InnerException }
			$result.http_status = 0
			if ($null -ne $ex -and $null -ne $ex.Response) { $result.http_status = [int]$ex.Response.StatusCode; $ex.Response.Close() }
			if (@(403, 404, 405, 411, 413) -contains $result.http_status) { return $result }
		}
		if ($result.attempts -lt 5) { Start-Sleep -Seconds $delay; $delay = [math]::Min($delay * 2, 30) }
	}
	return $result
}

# Invoke-Section runs a script block into collection\<File>: JSON for .json
# files (depth-limited), text otherwise. Failures are recorded, not thrown.
function Invoke-Section([string] $Name, [string] $File, [string] $Source, [scriptblock] $Block) {
	$path = Join-Path $script:Out $File
	$status = 'ok'; $err = ''
	# Native tools write to stderr; under Stop, Windows PowerShell would throw on that.
	# A missing cmdlet still ends the block and is caught below.
	$ErrorActionPreference = 'Continue'
	$watch = [Diagnostics.Stopwatch]::StartNew()
	try {
		$data = & $Block
		if ($File.EndsWith('.json')) {
			$text = ConvertTo-Json -InputObject @($data) -Depth 5
		} else {
			$text = ($data | Out-String -Width 4096)
		}
		[IO.File]::WriteAllText($path, [string]$text)
	} catch [Management.Automation.CommandNotFoundException] {
		$status = 'unavailable'; $err = $_.Exception.Message
	} catch {
		$status = 'failed'; $err = $_.Exception.Message
	}
	if (-not (Test-Path -LiteralPath $path)) { [IO.File]::WriteAllText($path, '') }
	$script:Sections += [ordered]@{
		name = $Name; file = "collection/$File"; source = $Source; status = $status; exit_status = $(if ($status -eq 'ok') { 0 } else { 1 })
		seconds = [math]::Round($watch.Elapsed.TotalSeconds, 2); bytes = (Get-Item -LiteralPath $path).Length; sha256 = (Get-Sha256Hex $path); stderr = $err
	}
}

# Copy-Evidence copies files into collection\files\<drive>\<path> and returns their manifest.
function Copy-Evidence([string[]] $Paths) {
	$manifest = @()
	foreach ($f in $Paths) {
		$item = Get-Item -LiteralPath $f -Force -ErrorAction SilentlyContinue
		if ($null -eq $item -or $item.PSIsContainer) { continue }
		$dest = Join-Path (Join-Path $script:Out 'files') ($item.FullName -replace ':', '')
		New-Item -ItemType Directory -Force -Path (Split-Path $dest) | Out-Null
		Copy-Item -LiteralPath $item.FullName -Destination $dest -Force
		$manifest += [ordered]@{ path = $item.FullName; size = $item.Length; mtime_utc = $item.LastWriteTimeUtc.ToString('o'); copied_sha256 = (Get-Sha256Hex $dest) }
	}
	return $manifest
}

$started = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
$report = [ordered]@{ schema = 'responder.windows-volatile-data/1'; case_id = $CaseId; status = 'failed'; started_at = $started }
$exitCode = 1
$work = Join-Path $env:TEMP ('responder-' + [Guid]::NewGuid().ToString('N'))
try {
	if ($CaseId -notmatch '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$') { throw 'invalid case ID' }
	if ($ArchiveUrl -notmatch $UrlPattern) { throw 'ArchiveUrl is not a valid https URL' }
	if ($ResultUrl -ne 'none' -and $ResultUrl -notmatch $UrlPattern) { throw 'ResultUrl is not a valid https URL' }
	$days = [int]$RecentDays
	if ($days -lt 1 -or $days -gt 90) { throw 'recent days must be 1 to 90' }
	$since = (Get-Date).AddDays(-$days)
	$script:Out = Join-Path $work 'collection'
	New-Item -ItemType Directory -Force -Path $script:Out | Out-Null

	$os = Get-CimInstance Win32_OperatingSystem
	$cs = Get-CimInstance Win32_ComputerSystem
	$report.instance = [ordered]@{
		hostname = $env:COMPUTERNAME; kernel = $os.Version; arch = $env:PROCESSOR_ARCHITECTURE; os = $os.Caption
		boot_id = $os.LastBootUpTime.ToUniversalTime().ToString('o'); mem_total_bytes = [int64]$cs.TotalPhysicalMemory
	}

	# Most volatile first.
	Invoke-Section 'system' 'system.json' 'Win32_OperatingSystem, Win32_ComputerSystem, Get-TimeZone' {
		[ordered]@{ collected_at = (Get-Date).ToUniversalTime().ToString('o'); os = $os | Select-Object Caption, Version, BuildNumber, InstallDate, LastBootUpTime
			computer = $cs | Select-Object Name, Domain, PartOfDomain, Manufacturer, Model; time_zone = (Get-TimeZone).Id }
	}
	Invoke-Section 'processes' 'processes.json' 'Win32_Process, Get-Process -IncludeUserName, Get-FileHash' {
		$owners = @{}
		foreach ($p in (Get-Process -IncludeUserName -ErrorAction SilentlyContinue)) { $owners[$p.Id] = $p.UserName }
		$hashes = @{}
		foreach ($p in (Get-CimInstance Win32_Process)) {
			$exe = $p.ExecutablePath
			$sha = $null; $missing = $false
			if ($exe) {
				if (-not $hashes.ContainsKey($exe)) {
					if (Test-Path -LiteralPath $exe) { $hashes[$exe] = (Get-FileHash -Algorithm SHA256 -LiteralPath $exe -ErrorAction SilentlyContinue).Hash } else { $hashes[$exe] = 'missing' }
				}
				$sha = $hashes[$exe]
				if ($sha -eq 'missing') { $sha = $null; $missing = $true } elseif ($sha) { $sha = $sha.ToLowerInvariant() }
			}
			[ordered]@{ pid = $p.ProcessId; ppid = $p.ParentProcessId; name = $p.Name; user = $owners[[int]$p.ProcessId]
				created_utc = $(if ($p.CreationDate) { $p.CreationDate.ToUniversalTime().ToString('o') } else { $null })
				cmdline = $p.CommandLine; exe = $exe; exe_missing_on_disk = $missing; exe_sha256 = $sha; session = $p.SessionId }
		}
	}
	Invoke-Section 'tcp_connections' 'tcp.json' 'Get-NetTCPConnection' {
		Get-NetTCPConnection | ForEach-Object { [ordered]@{ local_address = $_.LocalAddress; local_port = $_.LocalPort; remote_address = $_.RemoteAddress
				remote_port = $_.RemotePort; state = [string]$_.State; pid = $_.OwningProcess; process = (Get-Process -Id $_.OwningProcess -ErrorAction SilentlyContinue).ProcessName
				created = [string]$_.CreationTime } }
	}
	Invoke-Section 'udp_endpoints' 'udp.json' 'Get-NetUDPEndpoint' {
		Get-NetUDPEndpoint | ForEach-Object { [ordered]@{ local_address = $_.LocalAddress; local_port = $_.LocalPort; pid = $_.OwningProcess
				process = (Get-Process -Id $_.OwningProcess -ErrorAction SilentlyContinue).ProcessName } }
	}
	Invoke-Section 'netstat' 'netstat.txt' 'netstat -anob' { netstat.exe -anob }
	Invoke-Section 'dns_cache' 'dns_cache.json' 'Get-DnsClientCache' { Get-DnsClientCache | Select-Object Entry, RecordName, Type, Data, TimeToLive }
	Invoke-Section 'network' 'network.txt' 'ipconfig /all, route print, arp -a' { ipconfig.exe /all; route.exe print; arp.exe -a }
	Invoke-Section 'sessions' 'sessions.txt' 'query user, query session' { query.exe user 2>&1; query.exe session 2>&1 }
	Invoke-Section 'logons' 'logons.json' "Security log 4624/4625/4634/4647/4648/4672 since $days days" {
		Get-WinEvent -FilterHashtable @{ LogName = 'Security'; Id = 4624, 4625, 4634, 4647, 4648, 4672; StartTime = $since } -MaxEvents 5000 -ErrorAction SilentlyContinue |
			ForEach-Object { $x = [xml]$_.ToXml(); $d = [ordered]@{ time_utc = $_.TimeCreated.ToUniversalTime().ToString('o'); id = $_.Id }
				foreach ($n in $x.Event.EventData.Data) { if ($n.Name -in 'TargetUserName', 'TargetDomainName', 'LogonType', 'IpAddress', 'WorkstationName', 'SubjectUserName', 'ProcessName') { $d[$n.Name] = $n.'#text' } }
				$d }
	}
	Invoke-Section 'users' 'users.json' 'Get-LocalUser, Get-LocalGroupMember Administrators' {
		[ordered]@{ users = @(Get-LocalUser | Select-Object Name, Enabled, @{ n = 'SID'; e = { $_.SID.Value } }, LastLogon, PasswordLastSet, Description)
			administrators = @(Get-LocalGroupMember -Group Administrators -ErrorAction SilentlyContinue | Select-Object Name, ObjectClass, PrincipalSource) }
	}
	Invoke-Section 'drivers' 'drivers.json' 'Win32_SystemDriver, Get-FileHash' {
		Get-CimInstance Win32_SystemDriver | ForEach-Object {
			$path = $_.PathName -replace '^\\\?\?\\', '' -replace '^\\SystemRoot', $env:SystemRoot -replace '^System32', "$env:SystemRoot\System32"
			$sha = $null
			if ($path -and (Test-Path -LiteralPath $path)) { $sha = (Get-FileHash -Algorithm SHA256 -LiteralPath $path -ErrorAction SilentlyContinue).Hash }
			[ordered]@{ name = $_.Name; state = $_.State; start_mode = $_.StartMode; path = $path; sha256 = $(if ($sha) { $sha.ToLowerInvariant() } else { $null }) } }
	}
	Invoke-Section 'services' 'services.json' 'Win32_Service' { Get-CimInstance Win32_Service | Select-Object Name, DisplayName, State, StartMode, PathName, StartName, ProcessId }
	Invoke-Section 'scheduled_tasks' 'scheduled_tasks.json' 'Get-ScheduledTask' {
		Get-ScheduledTask | ForEach-Object { [ordered]@{ path = $_.TaskPath; name = $_.TaskName; state = [string]$_.State; author = $_.Author
				actions = @($_.Actions | ForEach-Object { [ordered]@{ execute = $_.Execute; arguments = $_.Arguments } }) } }
	}
	Invoke-Section 'autoruns' 'autoruns.json' 'Run/RunOnce keys (HKLM, every loaded user hive), Winlogon, startup folders' {
		$keys = @('HKLM:\Software\Microsoft\Windows\CurrentVersion\Run', 'HKLM:\Software\Microsoft\Windows\CurrentVersion\RunOnce',
			'HKLM:\Software\WOW6432Node\Microsoft\Windows\CurrentVersion\Run', 'HKLM:\Software\Microsoft\Windows NT\CurrentVersion\Winlogon')
		foreach ($h in (Get-ChildItem -Path 'Registry::HKEY_USERS' -ErrorAction SilentlyContinue)) {
			$keys += "Registry::$($h.Name)\Software\Microsoft\Windows\CurrentVersion\Run"
			$keys += "Registry::$($h.Name)\Software\Microsoft\Windows\CurrentVersion\RunOnce"
		}
		foreach ($k in $keys) {
			$item = Get-ItemProperty -Path $k -ErrorAction SilentlyContinue
			if ($null -eq $item) { continue }
			foreach ($p in $item.PSObject.Properties) { if ($p.Name -notlike 'PS*') { [ordered]@{ key = $k; name = $p.Name; value = [string]$p.Value } } }
		}
		foreach ($dir in @("$env:ProgramData\Microsoft\Windows\Start Menu\Programs\StartUp") + @(Get-ChildItem 'C:\Users' -Directory -ErrorAction SilentlyContinue | ForEach-Object { "$($_.FullName)\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup" })) {
			Get-ChildItem -LiteralPath $dir -Force -ErrorAction SilentlyContinue | ForEach-Object { [ordered]@{ key = $dir; name = $_.Name; value = $_.FullName } }
		}
	}
	Invoke-Section 'wmi_persistence' 'wmi_persistence.json' 'root\subscription event filters, consumers, bindings' {
		foreach ($c in '__EventFilter', 'CommandLineEventConsumer', 'ActiveScriptEventConsumer', '__FilterToConsumerBinding') {
			Get-CimInstance -Namespace root\subscription -ClassName $c -ErrorAction SilentlyContinue | ForEach-Object { [ordered]@{ class = $c; text = ($_ | Out-String).Trim() } }
		}
	}
	Invoke-Section 'volumes' 'volumes.json' 'Win32_LogicalDisk, Get-SmbShare' {
		[ordered]@{ disks = @(Get-CimInstance Win32_LogicalDisk | Select-Object DeviceID, DriveType, FileSystem, Size, FreeSpace, VolumeName, ProviderName)
			shares = @(Get-SmbShare -ErrorAction SilentlyContinue | Select-Object Name, Path, Description) }
	}
	Invoke-Section 'defender' 'defender.json' 'Get-MpPreference exclusions, Get-MpComputerStatus' {
		$p = Get-MpPreference
		[ordered]@{ exclusion_path = $p.ExclusionPath; exclusion_process = $p.ExclusionProcess; exclusion_extension = $p.ExclusionExtension
			realtime_disabled = $p.DisableRealtimeMonitoring; status = (Get-MpComputerStatus | Select-Object AMRunningMode, RealTimeProtectionEnabled, AntivirusSignatureLastUpdated) }
	}
	Invoke-Section 'recent_files' 'recent_files.json' "files modified in the last $days days under Windows, ProgramData, Users temp folders" {
		$roots = @("$env:SystemRoot\System32", "$env:SystemRoot\SysWOW64", "$env:SystemRoot\Temp", "$env:SystemRoot\Tasks", $env:ProgramData) +
			@(Get-ChildItem 'C:\Users' -Directory -ErrorAction SilentlyContinue | ForEach-Object { "$($_.FullName)\AppData\Local\Temp"; "$($_.FullName)\AppData\Roaming"; "$($_.FullName)\Downloads" })
		$roots | Where-Object { Test-Path -LiteralPath $_ } | ForEach-Object { Get-ChildItem -LiteralPath $_ -Recurse -Depth 4 -File -Force -ErrorAction SilentlyContinue } |
			Where-Object { $_.LastWriteTime -ge $since -or $_.CreationTime -ge $since } | Sort-Object LastWriteTime -Descending | Select-Object -First 20000 |
			ForEach-Object { [ordered]@{ path = $_.FullName; size = $_.Length; mtime_utc = $_.LastWriteTimeUtc.ToString('o'); ctime_utc = $_.CreationTimeUtc.ToString('o') } }
	}
	Invoke-Section 'files' 'files.json' 'copies of PowerShell histories, hosts, scheduled task XML' {
		$paths = @("$env:SystemRoot\System32\drivers\etc\hosts")
		foreach ($u in (Get-ChildItem 'C:\Users' -Directory -Force -ErrorAction SilentlyContinue)) {
			$paths += "$($u.FullName)\AppData\Roaming\Microsoft\Windows\PowerShell\PSReadLine\ConsoleHost_history.txt"
		}
		$paths += @(Get-ChildItem "$env:SystemRoot\System32\Tasks" -Recurse -File -Force -ErrorAction SilentlyContinue | Where-Object { $_.LastWriteTime -ge $since } | ForEach-Object { $_.FullName })
		Copy-Evidence $paths
	}

	$index = [ordered]@{ schema = 'responder.windows-volatile-data/1'; case_id = $CaseId; sections = $script:Sections }
	[IO.File]::WriteAllText((Join-Path $script:Out 'index.json'), (ConvertTo-Json -InputObject $index -Depth 5))
	$zip = Join-Path $work 'archive.zip'
	Compress-Archive -Path $script:Out -DestinationPath $zip -CompressionLevel Fastest
	$sha = Get-Sha256Hex $zip
	$put = Send-File $ArchiveUrl $zip 'application/zip'
	$report.archive = [ordered]@{ format = 'zip'; bytes = (Get-Item -LiteralPath $zip).Length; sha256 = $sha; content_md5 = $put.content_md5
		etag = $put.etag; attempts = $put.attempts; http_status = $put.http_status }
	if ($put.status -eq 'succeeded') { $report.status = 'succeeded'; $exitCode = 0 } else { $report.error = "uploading the archive failed (HTTP $($put.http_status))" }
} catch {
	$report.error = $_.Exception.Message
}
$report.finished_at = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
$report.sections = @($script:Sections | ForEach-Object { $s = [ordered]@{}; foreach ($k in $_.Keys) { if ($k -ne 'stderr') { $s[$k] = $_[$k] } }; $s })
New-Item -ItemType Directory -Force -Path $work | Out-Null
$reportFile = Join-Path $work 'report.json'
[IO.File]::WriteAllText($reportFile, (ConvertTo-Json -InputObject $report -Depth 6 -Compress))
$upload = [ordered]@{ status = 'skipped' }
if ($ResultUrl -ne 'none' -and $ResultUrl -match $UrlPattern) {
	$r = Send-File $ResultUrl $reportFile 'application/json'
	$upload = [ordered]@{ status = $r.status; etag = $r.etag; attempts = $r.attempts; http_status = [string]$r.http_status }
}
$report.result_upload = $upload
Write-Output (ConvertTo-Json -InputObject $report -Depth 6 -Compress)
Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
exit $exitCode
