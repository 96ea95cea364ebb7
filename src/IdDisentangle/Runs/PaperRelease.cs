using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using IdDisentangle.Models;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Runs;

/// <summary>The files of the paper's released checkpoint, as found in a folder.</summary>
internal sealed record ReleaseFiles(
    string AttrEncoder,
    string Mapper,
    string? Discriminator,
    string Generator,
    string IdentityModel
);

/// <summary>
/// The authors' released 256x256 checkpoint: <c>AttrEncoder.h5</c> (Keras InceptionV3 weights),
/// <c>LatentMappingNetwork.h5</c> and <c>W_D.h5</c> (Keras weights of the dense mapper and W discriminator; the
/// names may carry a reason suffix such as <c>_best_id_epoch_N</c>), the generator (<c>stylegan_G_256x256.h5</c>,
/// or any file <see cref="GeneratorFiles"/> reads) and <c>vggface2.h5</c> (the complete Keras identity model).
/// Importing writes a run folder that <c>iddis infer</c>, <c>interpolate</c> and <c>swap</c> load like any other.
/// Keras assigns weights by position among the layers that have weights, and by position inside a layer; the
/// readers here do the same, whatever the auto-generated names (dense, dense_1, conv2d_93, ...).
/// </summary>
internal static class PaperRelease
{
    /// <summary>Finds the release's files in <paramref name="dir"/>; several candidates for one role are an error
    /// naming them, unless a preference picks one.</summary>
    public static ReleaseFiles Find(string dir, string? mapperPreference = null)
    {
        if (!Directory.Exists(dir))
            throw new SettingException(Setting.ReleaseFolder, dir, "no such folder");
        var files = Directory
            .GetFiles(dir)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal)
            .ToList();
        string One(string role, string pattern, bool required = true, string? prefer = null)
        {
            var found = files.Where(f => Regex.IsMatch(f, pattern, RegexOptions.IgnoreCase)).ToList();
            if (found.Count > 1 && prefer is not null)
            {
                var preferred = found.Where(f => f.Contains(prefer, StringComparison.OrdinalIgnoreCase)).ToList();
                if (preferred.Count == 1)
                    found = preferred;
            }
            if (found.Count > 1 && found.Any(f => Regex.IsMatch(f, @"^[A-Za-z_]+\.h5$")))
                found = found.Where(f => Regex.IsMatch(f, @"^[A-Za-z_]+\.h5$")).ToList();
            return found.Count switch
            {
                1 => Path.Combine(dir, found[0]),
                0 when !required => "",
                0 => throw new FileNotFoundException(
                    $"{dir}: no {role} file (expected a name like {pattern.Replace("\\", "")})"
                ),
                _ => throw new SettingException(
                    Setting.ReleaseChoice,
                    null,
                    $"{dir} holds several {role} files ({string.Join(", ", found)}); choose one or remove the others"
                ),
            };
        }
        string discriminator = One("W discriminator", @"^W_D.*\.h5$", required: false, prefer: mapperPreference);
        return new ReleaseFiles(
            One("attribute encoder", @"^AttrEncoder.*\.h5$", prefer: mapperPreference),
            One("latent mapping network", @"^LatentMappingNetwork.*\.h5$", prefer: mapperPreference),
            discriminator.Length > 0 ? discriminator : null,
            One("generator", @"^stylegan.*\.(h5|pkl|pt)$"),
            One("identity model", @"^vggface2.*\.h5$")
        );
    }

    /// <summary>Keras InceptionV3 weights (any nesting and names) into <paramref name="net"/>, by order.</summary>
    public static void LoadAttrEncoder(InceptionV3 net, string path)
    {
        var all = KerasHdf5File.Read(path).AllWeights.ToList();
        var renamed = new Dictionary<string, Tensor>();
        int convs = 0,
            bns = 0;
        string? currentBn = null;
        foreach (var (name, value) in all)
        {
            string variable = Regex.Replace(name[(name.LastIndexOf('/') + 1)..], ":0$", "");
            string owner = name.Contains('/') ? name[..name.LastIndexOf('/')] : "";
            if (variable == "kernel" && value.dim() == 4)
                renamed[$"conv2d_{++convs}/kernel"] = value;
            else if (variable is "gamma" or "beta" or "moving_mean" or "moving_variance")
            {
                if (owner != currentBn)
                {
                    currentBn = owner;
                    bns++;
                }
                renamed[$"batch_normalization_{bns}/{variable}"] = value;
            }
            else
                throw new WeightMismatchException(
                    $"{path}: {name} is neither a convolution kernel nor a batch-norm variable of an InceptionV3"
                );
        }
        net.LoadKeras(renamed, path);
    }

    /// <summary>The dense layers of a Keras weights file, in order: (kernel [in,out], bias [out]).</summary>
    public static IReadOnlyList<(Tensor Kernel, Tensor Bias)> DenseLayers(string path)
    {
        var result = new List<(Tensor, Tensor)>();
        foreach (var layer in KerasHdf5File.Read(path).WeightedLayers)
        {
            // A saved sub-model can hold several dense layers in one group: pair kernels and biases in order.
            var ws = layer.Weights;
            for (int i = 0; i < ws.Count; i += 2)
            {
                if (i + 1 >= ws.Count || ws[i].Value.dim() != 2 || ws[i + 1].Value.dim() != 1)
                    throw new WeightMismatchException(
                        $"{path}: layer {layer.Name} is not a list of dense (kernel, bias) pairs"
                    );
                result.Add((ws[i].Value, ws[i + 1].Value));
            }
        }
        return result;
    }

    /// <summary>Copies dense layers into a module made of nn.Linear layers named layers.0, layers.1, ... (LatentMapper,
    /// WDiscriminator).</summary>
    public static void LoadDense(nn.Module module, string path)
    {
        var dense = DenseLayers(path);
        var sd = new Dictionary<string, Tensor>();
        for (int i = 0; i < dense.Count; i++)
        {
            sd[$"layers.{i}.weight"] = dense[i].Kernel.t().contiguous();
            sd[$"layers.{i}.bias"] = dense[i].Bias;
        }
        StateDicts.Assign(module, sd, path);
    }

    /// <summary>
    /// Writes the run folder <paramref name="runDir"/> (config.json and the last checkpoint) from the release;
    /// returns the checkpoint's description. Nothing existing is overwritten unless <paramref name="overwrite"/>.
    /// </summary>
    public static string Import(ReleaseFiles files, string runDir, bool overwrite = false, Action<string>? log = null)
    {
        var run = new RunFolder(runDir);
        if (run.HasCheckpoint(RunFolder.Last) && !overwrite)
            throw new IOException($"{runDir}: already holds a checkpoint; choose another folder or overwrite it");
        var g = GeneratorFiles.Load(files.Generator, out var report);
        using var gd = (IDisposable)g;
        log?.Invoke($"generator: {report.Kind}, {report.Layout}, {g.Resolution}x{g.Resolution}");
        using var identity = VggFace2Weights.Load(files.IdentityModel);
        log?.Invoke($"identity: {files.IdentityModel}, {identity.EmbeddingDim}-D embedding");
        using var inception = new InceptionV3();
        LoadAttrEncoder(inception, files.AttrEncoder);
        using var eAttr = new AttributeEncoder(inception);
        using var mapper = new LatentMapper(identity.EmbeddingDim, eAttr.FeatureDim, g.StyleDim);
        LoadDense(mapper, files.Mapper);
        using var d = new WDiscriminator(g.StyleDim);
        if (files.Discriminator is not null)
            LoadDense(d, files.Discriminator);

        string full = Path.GetFullPath(runDir);
        var config = new TrainingConfig
        {
            Name = Path.GetFileName(full),
            ResultsDir = Path.GetDirectoryName(full)!,
            GeneratorPath = Path.GetFullPath(files.Generator),
            Identity = IdentityNetwork.VggFace2.Name,
            IdentityWeights = Path.GetFullPath(files.IdentityModel),
            AttrBackbone = AttributeBackbone.InceptionV3.Name,
            FaceCrop = "ffhq",
        };
        run.WriteConfig(
            config,
            new Dictionary<string, object?>
            {
                ["imported_from"] = new
                {
                    attr_encoder = Path.GetFullPath(files.AttrEncoder),
                    mapper = Path.GetFullPath(files.Mapper),
                    w_discriminator = files.Discriminator is null ? null : Path.GetFullPath(files.Discriminator),
                },
                ["generator"] = new
                {
                    path = config.GeneratorPath,
                    kind = report.Kind,
                    resolution = g.Resolution,
                    style_dim = g.StyleDim,
                },
            }
        );
        // The paper's IDEncoder L2-normalises what M sees.
        var state = new CheckpointState(
            0,
            0,
            double.NegativeInfinity,
            double.PositiveInfinity,
            0,
            config.Identity,
            identity.EmbeddingDim,
            config.AttrBackbone,
            eAttr.InputSize,
            config.FaceCrop,
            NormalizedIdentity: true
        );
        run.SaveCheckpoint(
            RunFolder.Last,
            state,
            new Dictionary<CheckpointPart, Action<string>>
            {
                [CheckpointPart.AttributeEncoder] = path => StateDicts.SaveSafetensors(eAttr, path),
                [CheckpointPart.Mapper] = path => StateDicts.SaveSafetensors(mapper, path),
                [CheckpointPart.WDiscriminator] = path => StateDicts.SaveSafetensors(d, path),
            }
        );
        return $"{Path.GetFileName(files.Mapper)} with {Path.GetFileName(files.AttrEncoder)}";
    }

    /// <summary>
    /// The run folder of the release in <paramref name="releaseDir"/>, imported into the model store's cache on first
    /// use and reused while its files are unchanged (the cache is keyed by their paths and modification times).
    /// </summary>
    public static string ImportCached(string releaseDir, ModelStore store, Action<string>? log = null)
    {
        var files = Find(releaseDir);
        string identity = string.Join(
            "|",
            new[]
            {
                files.AttrEncoder,
                files.Mapper,
                files.Discriminator ?? "",
                files.Generator,
                files.IdentityModel,
            }.Select(f => f.Length == 0 ? "" : $"{Path.GetFullPath(f)}:{File.GetLastWriteTimeUtc(f).Ticks}")
        );
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..16].ToLowerInvariant();
        string run = Path.Combine(store.Root, "releases", key);
        if (!new RunFolder(run).HasCheckpoint(RunFolder.Last))
            Import(files, run, overwrite: true, log);
        return run;
    }
}
