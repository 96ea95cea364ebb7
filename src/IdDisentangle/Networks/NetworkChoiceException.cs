namespace IdDisentangle.Networks;

/// <summary>
/// A network name that is not in the registry, or a choice that lacks what it needs (a weights file). The message
/// names the concept (identity network, attribute backbone, landmark model) and the choices; the CLI adds its flag.
/// </summary>
internal sealed class NetworkChoiceException(string message, IReadOnlyList<string>? choices = null)
    : ArgumentException(message)
{
    /// <summary>The names that would have been accepted (empty when the name was fine but something else is
    /// missing).</summary>
    public IReadOnlyList<string> Choices { get; } = choices ?? [];
}
