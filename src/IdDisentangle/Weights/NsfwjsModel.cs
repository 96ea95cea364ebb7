using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// The model files of the npm package nsfwjs: TensorFlow.js layers models bundled as JavaScript modules
/// (<c>model.min.js</c> holds the model.json as an object literal, each <c>group1-shardKofN.min.js</c> one
/// base64 string of weight bytes). Read as data: the literal is parsed, the base64 decoded; nothing is run.
/// </summary>
internal static partial class NsfwjsModel
{
    /// <summary>The weights (TensorFlow names and layouts) of the model in <paramref name="folder"/>, e.g.
    /// dist/models/inception_v3.</summary>
    public static Dictionary<string, Tensor> LoadWeights(string folder)
    {
        string modelJs = Path.Combine(folder, "model.min.js");
        if (!File.Exists(modelJs))
            throw new FileNotFoundException($"{modelJs}: no such nsfwjs model file", modelJs);
        string source = File.ReadAllText(modelJs);
        int at = source.IndexOf("weightsManifest:", StringComparison.Ordinal);
        if (at < 0)
            throw new InvalidDataException($"{modelJs}: no weightsManifest in the model literal");
        var manifest =
            JsLiteral.Parse(source, at + "weightsManifest:".Length, out _) as JsonArray
            ?? throw new InvalidDataException($"{modelJs}: weightsManifest is not an array");
        return TfjsWeights.Decode(
            manifest,
            shard =>
            {
                string file = Path.Combine(folder, shard + ".min.js");
                if (!File.Exists(file))
                    throw new FileNotFoundException($"{modelJs}: missing weight shard {file}", file);
                var longest =
                    Base64Literal().Matches(File.ReadAllText(file)).Select(m => m.Groups[1].Value).MaxBy(v => v.Length)
                    ?? throw new InvalidDataException($"{file}: no base64 weight data");
                return Convert.FromBase64String(longest);
            },
            modelJs
        );
    }

    [GeneratedRegex("\"([A-Za-z0-9+/]{64,}={0,2})\"")]
    private static partial Regex Base64Literal();
}
