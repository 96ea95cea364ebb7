namespace IdDisentangle.Training;

/// <summary>Why a training run stopped.</summary>
internal enum StopReason
{
    /// <summary>It reached the configured number of steps.</summary>
    ReachedNumSteps,

    /// <summary>The caller's cancellation token fired (Ctrl-C, SIGTERM).</summary>
    Cancelled,

    /// <summary>Ten steps in a row had a non-finite loss.</summary>
    NonFiniteLosses,

    /// <summary>The paper's not-improved counter exceeded its limit.</summary>
    NotImproving,
}

/// <summary>What a run ended with.</summary>
internal sealed record TrainingResult(
    long LastStep,
    StopReason StopReason,
    IReadOnlyDictionary<string, double>? LastValidation
)
{
    /// <summary>The stop reason in words.</summary>
    public string Describe() =>
        StopReason switch
        {
            StopReason.ReachedNumSteps => "reached the configured number of steps",
            StopReason.Cancelled => "cancelled",
            StopReason.NonFiniteLosses => "ten non-finite losses in a row",
            StopReason.NotImproving => "no improvement in validation for longer than allowed",
            _ => StopReason.ToString(),
        };
}
