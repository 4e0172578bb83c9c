# Helpers the Windows azd hooks share (dot-sourced by key-secrets.ps1 and first-rotation.ps1).

# The value of azd environment variable $name, or '' when it is not set.
function Get-AzdValue([string] $name) {
  $v = azd env get-value $name 2>$null
  if ($LASTEXITCODE -ne 0) { $global:LASTEXITCODE = 0; return '' }
  return "$v".Trim()
}

# Runs the Azure CLI with these arguments; throws naming the command when it fails.
function Invoke-Az {
  $out = & az @args
  if ($LASTEXITCODE -ne 0) { throw "az $($args -join ' ') failed" }
  return $out
}
