namespace IdDisentangle.Weights.Pickle;

/// <summary>A Python tuple: compared by value so it can serve as a dictionary key.</summary>
internal sealed class PyTuple(object?[] items) : IEquatable<PyTuple>
{
    public object?[] Items { get; } = items;
    public int Count => Items.Length;
    public object? this[int i] => Items[i];

    public bool Equals(PyTuple? other) => other is not null && Items.SequenceEqual(other.Items);

    public override bool Equals(object? obj) => Equals(obj as PyTuple);

    public override int GetHashCode() => Items.Aggregate(17, (h, x) => h * 31 + (x?.GetHashCode() ?? 0));

    public override string ToString() => "(" + string.Join(", ", Items) + ")";
}

/// <summary>A Python dict (or OrderedDict), keeping insertion order.</summary>
internal sealed class PyDict : Dictionary<object, object?>
{
    /// <summary>Instance attributes set by BUILD (a PyTorch state dict's <c>_metadata</c>, for instance).</summary>
    public object? State { get; set; }

    public object? GetOrNull(string key) => TryGetValue(key, out var v) ? v : null;
}

/// <summary>
/// An instance of an allowed plain Python class (such as argparse.Namespace): its class name and attribute
/// dictionary. Nothing of the class is run; the attributes are data.
/// </summary>
internal sealed class PyObject(string module, string name)
{
    public string Module { get; } = module;
    public string Name { get; } = name;
    public object?[] NewArgs { get; set; } = [];
    public object? State { get; set; }
    public PyDict Attributes =>
        State as PyDict ?? (State is PyTuple { Count: 2 } t && t[0] is PyDict d ? d : new PyDict());

    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>An object whose state arrives through pickle's BUILD opcode (Python's __setstate__).</summary>
internal interface IPickleBuildable
{
    void SetState(object? state);
}

/// <summary>How one allowed global behaves when called (REDUCE), instantiated (NEWOBJ) or built (BUILD).</summary>
internal sealed class PickleGlobal
{
    public required string Module { get; init; }
    public required string Name { get; init; }

    /// <summary>REDUCE: the global called with positional arguments.</summary>
    public Func<object?[], object?>? Call { get; init; }

    /// <summary>NEWOBJ: cls.__new__(cls, *args).</summary>
    public Func<object?[], object?>? New { get; init; }

    /// <summary>What the global stands for when it is used as a value (a storage type in a persistent id,
    /// say).</summary>
    public object? Tag { get; init; }

    public override string ToString() => $"{Module}.{Name}";

    /// <summary>A plain class whose instances are data: <c>__new__</c> and <c>__setstate__</c> give a <see
    /// cref="PyObject"/>.</summary>
    public static PickleGlobal PlainClass(string module, string name) =>
        new()
        {
            Module = module,
            Name = name,
            New = args => new PyObject(module, name) { NewArgs = args },
            Call = args => new PyObject(module, name) { NewArgs = args },
        };
}

/// <summary>A pickle that is malformed, or that names something outside the allowed set of globals.</summary>
internal sealed class PickleSecurityException(string message) : IOException(message);
