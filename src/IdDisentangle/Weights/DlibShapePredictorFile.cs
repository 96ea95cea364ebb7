using IdDisentangle.Models.Dlib;

namespace IdDisentangle.Weights;

/// <summary>
/// Loads a dlib shape predictor file (<c>shape_predictor_68_face_landmarks.dat</c> and the like, as
/// <c>dlib::serialize</c> writes a <c>dlib::shape_predictor</c>): version 1, the mean shape, the forests of each
/// cascade level, then each level's pixel anchors and offsets.
/// </summary>
internal static class DlibShapePredictorFile
{
    public static ShapePredictor Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such dlib shape predictor file", path);
        var r = new DlibReader(File.ReadAllBytes(path), path);
        long version = r.ReadInt64();
        if (version != 1)
            throw r.Error($"shape predictor version {version} (dlib writes version 1)");
        float[] mean = r.ReadColumnVector("mean shape");
        if (mean.Length == 0 || mean.Length % 2 != 0)
            throw r.Error($"the mean shape has {mean.Length} coordinates");

        int levels = r.ReadCount("number of cascade levels", 1000);
        var forests = new RegressionTree[levels][];
        for (int l = 0; l < levels; l++)
        {
            forests[l] = new RegressionTree[r.ReadCount($"number of trees in level {l}", 100_000)];
            for (int t = 0; t < forests[l].Length; t++)
                forests[l][t] = ReadTree(r, mean.Length);
        }

        int anchorLevels = r.ReadCount("number of anchor lists", 1000);
        if (anchorLevels != levels)
            throw r.Error($"{anchorLevels} anchor lists for {levels} cascade levels");
        var anchors = new int[levels][];
        for (int l = 0; l < levels; l++)
        {
            anchors[l] = new int[r.ReadCount($"number of pixels in level {l}", 1 << 20)];
            for (int i = 0; i < anchors[l].Length; i++)
                anchors[l][i] = r.ReadCount("anchor landmark", mean.Length / 2 - 1);
        }

        int offsetLevels = r.ReadCount("number of offset lists", 1000);
        if (offsetLevels != levels)
            throw r.Error($"{offsetLevels} offset lists for {levels} cascade levels");
        var result = new CascadeLevel[levels];
        for (int l = 0; l < levels; l++)
        {
            int n = r.ReadCount($"number of offsets in level {l}", 1 << 20);
            if (n != anchors[l].Length)
                throw r.Error($"level {l} has {anchors[l].Length} anchors but {n} offsets");
            var (ox, oy) = (new float[n], new float[n]);
            for (int i = 0; i < n; i++)
                (ox[i], oy[i]) = (r.ReadSingle(), r.ReadSingle());
            result[l] = new CascadeLevel(anchors[l], ox, oy, forests[l]);
        }
        try
        {
            return new ShapePredictor(mean, result);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    static RegressionTree ReadTree(DlibReader r, int shapeLength)
    {
        int splits = r.ReadCount("number of splits", 1 << 16);
        var (first, second, thresholds) = (new int[splits], new int[splits], new float[splits]);
        for (int s = 0; s < splits; s++)
        {
            first[s] = r.ReadCount("split pixel", 1 << 20);
            second[s] = r.ReadCount("split pixel", 1 << 20);
            thresholds[s] = r.ReadSingle();
        }
        var leaves = new float[r.ReadCount("number of leaves", 1 << 17)][];
        for (int i = 0; i < leaves.Length; i++)
        {
            leaves[i] = r.ReadColumnVector("leaf");
            if (leaves[i].Length != shapeLength)
                throw r.Error($"a leaf of {leaves[i].Length} values for a shape of {shapeLength}");
        }
        return new RegressionTree(first, second, thresholds, leaves);
    }
}
