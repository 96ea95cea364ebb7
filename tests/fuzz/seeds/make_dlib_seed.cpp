// A tiny dlib shape predictor (4 landmarks, 2 cascade levels of 2 depth-1 trees, 3 feature pixels), serialized by
// dlib itself: the seed of the dlib fuzz target. Built and run by make_seeds.sh.
#include <dlib/image_processing/shape_predictor.h>
#include <fstream>

int main(int, char** argv)
{
    using namespace dlib;
    matrix<float, 0, 1> mean(8);
    for (long i = 0; i < 8; ++i)
        mean(i) = 0.1f * i;
    std::vector<std::vector<impl::regression_tree>> forests(2);
    std::vector<std::vector<dlib::vector<float, 2>>> pixels(2);
    for (int level = 0; level < 2; ++level)
    {
        for (int t = 0; t < 2; ++t)
        {
            impl::regression_tree tree;
            tree.splits.push_back({0, 1 + (unsigned long)t, 0.25f});
            for (int leaf = 0; leaf < 2; ++leaf)
            {
                matrix<float, 0, 1> delta(8);
                for (long i = 0; i < 8; ++i)
                    delta(i) = 0.01f * (leaf + 1) * (i - 4);
                tree.leaf_values.push_back(delta);
            }
            forests[level].push_back(tree);
        }
        for (int p = 0; p < 3; ++p)
            pixels[level].push_back(dlib::vector<float, 2>(0.05f * p, -0.03f * p));
    }
    shape_predictor sp(mean, forests, pixels);
    std::ofstream out(argv[1], std::ios::binary);
    serialize(sp, out);
}
