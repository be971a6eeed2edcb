# Dot-sourced by the pipeline scripts of this folder: each phase of a migration is a "step" that is
# timed and recorded, and the record is written as JUnit XML, which the pipeline publishes
# (PublishTestResults@2) so the run's Tests tab shows which phase failed, with the error id, its
# message and what to do next. A failed step is recorded and then thrown again: the script still
# ends with a non-zero exit code.

$script:PipelineSteps = [System.Collections.Generic.List[object]]::new()

# Runs one step; its output is passed on. On a failure the step is recorded with the error and the
# error is thrown again (the caller's $ErrorActionPreference = 'Stop' makes every error terminating).
function Invoke-PipelineStep {
    param([Parameter(Mandatory)] [string] $Name, [Parameter(Mandatory)] [scriptblock] $ScriptBlock)

    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    Write-Host "$([datetime]::UtcNow.ToString('yyyy-MM-dd HH:mm:ss'))Z step '$Name' starts"
    try {
        & $ScriptBlock
        $script:PipelineSteps.Add([pscustomobject]@{ Name = $Name; Seconds = $clock.Elapsed.TotalSeconds; Failure = $null })
    }
    catch {
        $failure = [pscustomobject]@{
            # The module's error id ('PhaseOutOfOrder'), without the command name that follows it.
            ErrorId = ($_.FullyQualifiedErrorId -split ',')[0]
            Message = $_.Exception.Message
            RecommendedAction = $_.ErrorDetails.RecommendedAction
        }
        $script:PipelineSteps.Add([pscustomobject]@{ Name = $Name; Seconds = $clock.Elapsed.TotalSeconds; Failure = $failure })
        # An Azure DevOps log command: the error shows on the run's summary page (elsewhere a plain line).
        Write-Host "##vso[task.logissue type=error]$Name failed ($($failure.ErrorId)): $($failure.Message -replace '[\r\n]+', ' ')"
        throw
    }
}

# Writes the steps run so far as one JUnit test suite (what PublishTestResults@2 reads with
# testResultsFormat: JUnit). Nothing is written when -Path is empty.
function Write-PipelineStepResult {
    param([string] $Path, [Parameter(Mandatory)] [string] $Suite)

    if (-not $Path) { return }
    $settings = [System.Xml.XmlWriterSettings]@{ Indent = $true }
    $directory = Split-Path -Path $Path -Parent
    if ($directory) { $null = New-Item -ItemType Directory -Path $directory -Force }
    $writer = [System.Xml.XmlWriter]::Create($Path, $settings)
    try {
        $failed = @($script:PipelineSteps | Where-Object { $_.Failure })
        $writer.WriteStartElement('testsuites')
        $writer.WriteStartElement('testsuite')
        $writer.WriteAttributeString('name', $Suite)
        $writer.WriteAttributeString('tests', "$($script:PipelineSteps.Count)")
        $writer.WriteAttributeString('failures', "$($failed.Count)")
        $writer.WriteAttributeString('timestamp', [datetime]::UtcNow.ToString('s'))
        foreach ($step in $script:PipelineSteps) {
            $writer.WriteStartElement('testcase')
            $writer.WriteAttributeString('classname', $Suite)
            $writer.WriteAttributeString('name', $step.Name)
            $writer.WriteAttributeString('time', $step.Seconds.ToString('0.000', [cultureinfo]::InvariantCulture))
            if ($step.Failure) {
                $writer.WriteStartElement('failure')
                $writer.WriteAttributeString('type', "$($step.Failure.ErrorId)")
                $writer.WriteAttributeString('message', "$($step.Failure.Message)")
                $writer.WriteString("$($step.Failure.Message)`nRecommended action: $($step.Failure.RecommendedAction)")
                $writer.WriteEndElement()
            }
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()
        $writer.WriteEndElement()
    }
    finally {
        $writer.Dispose()
    }
}
