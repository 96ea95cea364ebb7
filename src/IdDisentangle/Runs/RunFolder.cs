using System.Text.Json;
using System.Text.Json.Serialization;
using IdDisentangle.IO;

namespace IdDisentangle.Runs;

/// <summary>What a checkpoint holds, each in a file of its own.</summary>
internal enum CheckpointPart
{
    AttributeEncoder,
    Mapper,
    WDiscriminator,

    /// <summary>Adam of the main objective over E_attr and M.</summary>
    OptimizerMain,

    /// <summary>Adam of M's adversarial loss over E_attr and M.</summary>
    OptimizerAdversarial,
    OptimizerWDiscriminator,
}

/// <summary>One checkpoint folder of a run: its state and where each part's file is.</summary>
internal sealed record Checkpoint(string Name, string Directory, CheckpointState State)
{
    public string PathOf(CheckpointPart part) => Path.Combine(Directory, RunFolder.FileName(part));

    public bool Has(CheckpointPart part) => File.Exists(PathOf(part));
}

/// <summary>
/// A training run's folder and the only code that knows its layout: config.json (every setting, the generator and
/// data set it used), metrics.jsonl and log.txt, images/ (validation grids), tensorboard/, and weights/NAME/ per
/// checkpoint (last, best_id, best_lnd) with state.json and one safetensors file per part. Checkpoints are written
/// to NAME.new and swapped in complete, so an interruption leaves the old checkpoint or the new one.
/// </summary>
internal sealed class RunFolder(string path)
{
    /// <summary>The checkpoint written every 500 steps and at the end; the only one with optimiser states.</summary>
    public const string Last = "last";

    /// <summary>The checkpoint of the highest identity similarity in validation.</summary>
    public const string BestId = "best_id";

    /// <summary>The checkpoint of the lowest landmark error in validation.</summary>
    public const string BestLandmarks = "best_lnd";

    const string ConfigFile = "config.json",
        StateFile = "state.json",
        WeightsDir = "weights";

    /// <summary>How state.json is (de)serialised: best metrics start at +/- infinity.</summary>
    static readonly JsonSerializerOptions StateJson = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string Path { get; } = path;
    public string ImagesDir => System.IO.Path.Combine(Path, "images");
    public string TensorboardDir => System.IO.Path.Combine(Path, "tensorboard");
    public string MetricsFile => System.IO.Path.Combine(Path, "metrics.jsonl");
    public string LogFile => System.IO.Path.Combine(Path, "log.txt");
    public string ConfigPath => System.IO.Path.Combine(Path, ConfigFile);

    internal static string FileName(CheckpointPart part) =>
        part switch
        {
            CheckpointPart.AttributeEncoder => "e_attr.safetensors",
            CheckpointPart.Mapper => "mapper.safetensors",
            CheckpointPart.WDiscriminator => "w_discriminator.safetensors",
            CheckpointPart.OptimizerMain => "optimizer_main.safetensors",
            CheckpointPart.OptimizerAdversarial => "optimizer_adversarial.safetensors",
            CheckpointPart.OptimizerWDiscriminator => "optimizer_w_discriminator.safetensors",
            _ => throw new ArgumentOutOfRangeException(nameof(part)),
        };

    string CheckpointDir(string name) => System.IO.Path.Combine(Path, WeightsDir, name);

    /// <summary>True when the folder holds a run (its config.json).</summary>
    public bool Exists => File.Exists(ConfigPath);

    /// <summary>True when the run has a complete checkpoint NAME.</summary>
    public bool HasCheckpoint(string name) => File.Exists(System.IO.Path.Combine(CheckpointDir(name), StateFile));

    /// <summary>Creates the folder and its subfolders.</summary>
    public void Create()
    {
        foreach (var d in new[] { Path, ImagesDir, TensorboardDir, System.IO.Path.Combine(Path, WeightsDir) })
            Directory.CreateDirectory(d);
    }

    /// <summary>Writes config.json: the run's settings under "config" and what else <paramref name="details"/>
    /// holds.</summary>
    public void WriteConfig(TrainingConfig config, IReadOnlyDictionary<string, object?> details)
    {
        var doc = new Dictionary<string, object?> { ["config"] = config };
        foreach (var (k, v) in details)
            doc[k] = v;
        Directory.CreateDirectory(Path);
        AtomicFile.WriteAllText(
            ConfigPath,
            JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true })
        );
    }

    /// <summary>The settings the run was made with.</summary>
    public TrainingConfig ReadConfig()
    {
        if (!File.Exists(ConfigPath))
            throw new FileNotFoundException($"{Path}: not a training run folder (no {ConfigFile})", ConfigPath);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(ConfigPath));
            return doc.RootElement.GetProperty("config").Deserialize<TrainingConfig>()
                ?? throw new InvalidDataException($"{ConfigPath}: no training configuration");
        }
        // A document of the wrong shape (a number where the object belongs) fails as InvalidOperationException.
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"{ConfigPath}: not a run configuration ({e.Message})", e);
        }
    }

    /// <summary>
    /// Checkpoint <paramref name="name"/>; null picks best_id when present, else last. A missing one is an error
    /// naming the choices.
    /// </summary>
    public Checkpoint OpenCheckpoint(string? name = null)
    {
        string chosen = name ?? (HasCheckpoint(BestId) ? BestId : Last);
        string dir = CheckpointDir(chosen);
        if (!HasCheckpoint(chosen))
            throw new FileNotFoundException($"{dir}: no such checkpoint ({BestId}, {BestLandmarks} or {Last})", dir);
        return new Checkpoint(chosen, dir, ReadState(dir));
    }

    /// <summary>
    /// The checkpoint to resume from: last, or the copy an interrupted save left (last.old, last.new); null when
    /// the run has none.
    /// </summary>
    public Checkpoint? FindResumable()
    {
        foreach (var candidate in new[] { Last, Last + ".old", Last + ".new" })
        {
            string dir = CheckpointDir(candidate);
            if (File.Exists(System.IO.Path.Combine(dir, StateFile)))
                return new Checkpoint(candidate, dir, ReadState(dir));
        }
        return null;
    }

    static CheckpointState ReadState(string dir)
    {
        string file = System.IO.Path.Combine(dir, StateFile);
        try
        {
            return JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(file), StateJson)
                ?? throw new InvalidDataException($"{file}: empty checkpoint state");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file}: not a checkpoint state ({e.Message})", e);
        }
    }

    /// <summary>
    /// Writes checkpoint <paramref name="name"/> atomically: each part through its writer (given the file path),
    /// then state.json, then the complete folder replaces the old one.
    /// </summary>
    public void SaveCheckpoint(
        string name,
        CheckpointState state,
        IReadOnlyDictionary<CheckpointPart, Action<string>> parts
    )
    {
        string final = CheckpointDir(name),
            fresh = final + ".new";
        if (Directory.Exists(fresh))
            Directory.Delete(fresh, true);
        try
        {
            Directory.CreateDirectory(fresh);
            foreach (var (part, write) in parts)
                write(System.IO.Path.Combine(fresh, FileName(part)));
            AtomicFile.WriteAllText(
                System.IO.Path.Combine(fresh, StateFile),
                JsonSerializer.Serialize(state, StateJson)
            );
        }
        catch (IOException e)
        {
            // A full disk or a failing device: the previous checkpoint stays as it was, and nothing half-written.
            try
            {
                Directory.Delete(fresh, true);
            }
            catch (IOException) { }
            throw new IOException(
                $"{final}: the checkpoint could not be written ({e.Message}); the previous one is kept",
                e
            );
        }
        AtomicFile.ReplaceDirectory(fresh, final);
    }

    /// <summary>
    /// Prepares metrics.jsonl for a run resumed at <paramref name="step"/>: drops a torn last line (a process killed
    /// while appending it) and the records of steps from <paramref name="step"/> on (a killed run got past its last
    /// checkpoint; the resumed one redoes them). Returns whether a line was torn and how many records were dropped.
    /// </summary>
    public (bool Torn, int Dropped) TrimMetrics(long step)
    {
        if (!File.Exists(MetricsFile))
            return (false, 0);
        var text = File.ReadAllText(MetricsFile);
        bool torn = text.Length > 0 && text[^1] != '\n';
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        if (torn)
            lines.RemoveAt(lines.Count - 1);
        // A validation record of step k is written before the checkpoint of step k; a step record k is step k's own.
        bool Keep(string line) =>
            RecordStep(line) switch
            {
                null => true,
                ("validation", var k) => k <= step,
                (_, var k) => k < step,
            };
        var kept = lines.Where(Keep).ToList();
        int dropped = lines.Count - kept.Count;
        if (torn || dropped > 0)
            AtomicFile.WriteAllText(MetricsFile, string.Concat(kept.Select(l => l + "\n")));
        return (torn, dropped);
    }

    static (string Type, long Step)? RecordStep(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            return (root.GetProperty("type").GetString() ?? "", root.GetProperty("step").GetInt64());
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Appends one JSON object as a line of metrics.jsonl; a non-finite number (the loss of a skipped
    /// step) is written as null, which JSON can hold.</summary>
    public void AppendMetrics(IReadOnlyDictionary<string, object> line) =>
        File.AppendAllText(
            MetricsFile,
            JsonSerializer.Serialize(
                line.ToDictionary(p => p.Key, p => p.Value is double d && !double.IsFinite(d) ? null : p.Value)
            ) + "\n"
        );

    /// <summary>Appends a line to log.txt.</summary>
    public void AppendLog(string line) => File.AppendAllText(LogFile, line + "\n");

    /// <summary>The path of the validation grid of step <paramref name="step"/>.</summary>
    public string ValidationImage(long step) => System.IO.Path.Combine(ImagesDir, $"step_{step:000000}.png");
}
