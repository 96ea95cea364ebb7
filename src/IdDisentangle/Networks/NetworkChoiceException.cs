namespace IdDisentangle.Networks;

/// <summary>
/// A network name that is not in the registry, or a choice that lacks what it needs (a weights file). The message
/// names the concept (identity network, attribute backbone, landmark model) and the choices; the CLI adds its flag.
/// </summary>
public sealed class NetworkChoiceException(string message) : ArgumentException(message);
