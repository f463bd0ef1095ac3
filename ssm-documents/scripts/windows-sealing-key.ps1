<#
.SYNOPSIS
Make the RSA key pair that seals the parameters of the next collection
command, and print its public key.

.DESCRIPTION
Run by the Responder-WindowsSealingKey document (Windows PowerShell 5.1 or
PowerShell 7, as SYSTEM). The key is a persisted CNG key named
Responder-<SealingKeyId>, 3072 bits, whose private half cannot be exported;
the collection command that uses it deletes it. Prints one JSON line, schema
responder.sealing-key/1, with the public key's modulus and exponent (base64:
Windows PowerShell 5.1 cannot write SubjectPublicKeyInfo). Exits 0 only when
the key was made.
#>
[CmdletBinding()]
param(
	[Parameter(Mandatory = $true)][string] $SealingKeyId
)

$ErrorActionPreference = 'Stop'
try {
	if ($SealingKeyId -notmatch '^[a-f0-9]{32}$') { throw 'invalid sealing key ID' }
	$params = New-Object Security.Cryptography.CngKeyCreationParameters
	$params.ExportPolicy = [Security.Cryptography.CngExportPolicies]::None
	$params.KeyUsage = [Security.Cryptography.CngKeyUsages]::Decryption
	$length = New-Object Security.Cryptography.CngProperty('Length', [BitConverter]::GetBytes([int]3072), [Security.Cryptography.CngPropertyOptions]::None)
	$params.Parameters.Add($length)
	# Create fails on an existing name: a key is never reused or planted.
	$key = [Security.Cryptography.CngKey]::Create([Security.Cryptography.CngAlgorithm]::Rsa, 'Responder-' + $SealingKeyId, $params)
	$rsa = New-Object Security.Cryptography.RSACng($key)
	$public = $rsa.ExportParameters($false)
	[ordered]@{
		schema = 'responder.sealing-key/1'; status = 'succeeded'; key_id = $SealingKeyId; algorithm = 'RSA-OAEP-SHA256'
		modulus = [Convert]::ToBase64String($public.Modulus); exponent = [Convert]::ToBase64String($public.Exponent)
	} | ConvertTo-Json -Compress
	exit 0
} catch {
	[ordered]@{ schema = 'responder.sealing-key/1'; status = 'failed'; error = $_.Exception.Message } | ConvertTo-Json -Compress
	exit 1
}
