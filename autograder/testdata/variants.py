"""Correct and buggy versions of the graded cells, as edits of the solution notebook's cells.

Each variant maps a grade_id to a list of (old text, new text) replacements applied to
the solution's source of that cell. They feed the calibration of the hidden training-run
test (benchmarks/calibrate_training_test.py) and the tests that the notebook's own tests
catch each bug with a message naming it (tests/test_assignment_catches_bugs.py).
"""

SEED1_GENERATOR = [  # seed 1's MLP generator (no BatchNorm), with its (N, 28, 28) output fixed
    ("""        def block(in_features, out_features, normalize=True):
            layers = [nn.Linear(in_features, out_features)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_features))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(opt.latent_dim + opt.label_dim, 128, normalize=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, int(np.prod(img_shape))),
            nn.Tanh(),
        )
""", """        self.model = nn.Sequential(
            nn.Linear(150, 128), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(128, 256), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 512), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1024), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 784), nn.Tanh())
"""),
    ("""        gen_input = torch.cat((noise, self.label_embedding(labels)), dim=1)
        img = self.model(gen_input)
        img = img.view(img.size(0), *img_shape)
""", """        noise = noise.view(noise.size(0), 100)
        c = self.label_embedding(labels)
        x = torch.cat([noise, c], 1)
        out = self.model(x)
        img = out.view(x.size(0), 1, 28, 28)
"""),
]
SEED1_DISCRIMINATOR = [  # seed 1's discriminator (Dropout 0.3, Sigmoid), with its squeeze() removed
    ("""        self.model = nn.Sequential(
            nn.Linear(int(np.prod(img_shape)) + opt.label_dim, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1),
        )
""", """        self.model = nn.Sequential(
            nn.Linear(834, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 1), nn.Sigmoid())
"""),
    ("""        d_in = torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), dim=1)
        validity = self.model(d_in)
""", """        img = img.view(img.size(0), 784)
        c = self.label_embedding(labels)
        x = torch.cat([img, c], 1)
        validity = self.model(x)
"""),
]

# Other correct ways to write the graded cells: every test must pass them.
CORRECT = {
    "correct: seed 1's architecture, its two shape bugs fixed": {
        "generator": SEED1_GENERATOR, "discriminator": SEED1_DISCRIMINATOR},
    "correct: label embedding first in both concatenations": {
        "generator": [("torch.cat((noise, self.label_embedding(labels)), dim=1)",
                       "torch.cat((self.label_embedding(labels), noise), dim=1)")],
        "discriminator": [("torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), dim=1)",
                           "torch.cat((self.label_embedding(labels), img.view(img.size(0), -1)), dim=1)")]},
    "correct: fresh fakes for D, summed loss, numpy noise (seed 1's way)": {"train_step": [
        ("    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)\n",
         "    z2 = FloatTensor(np.random.randn(batch_size, opt.latent_dim))\n"
         "    labels2 = LongTensor(np.random.randint(0, opt.n_classes, batch_size))\n"
         "    fake_loss = adversarial_loss(discriminator(generator(z2, labels2), labels2), fake)\n"),
        ("d_loss = (real_loss + fake_loss) / 2", "d_loss = real_loss + fake_loss")]},
}

# Common bugs: {name: ({grade_id: edits}, the test cell that must fail, a phrase its message must contain)}.
BUGS = {
    # the seeds' own bugs
    "generator returns (N, 28, 28) (seed 1)": (
        {"generator": [("img.view(img.size(0), *img_shape)", "img.view(img.size(0), 28, 28)")]},
        "test_generator", "channel dimension is missing"),
    "discriminator output squeeze()d to (N,) (seed 1)": (
        {"discriminator": [("validity = self.model(d_in)", "validity = self.model(d_in).squeeze()")]},
        "test_discriminator", "Did you call .squeeze()?"),
    # architecture
    "no Tanh at the end of the generator": (
        {"generator": [("            nn.Tanh(),\n", "")]},
        "test_generator_hidden", "the last layer must be nn.Tanh()"),
    "Sigmoid instead of Tanh": (
        {"generator": [("            nn.Tanh(),\n", "            nn.Sigmoid(),\n")]},
        "test_generator_hidden", "not nn.Sigmoid()"),
    "generator ignores its labels": (
        {"generator": [("torch.cat((noise, self.label_embedding(labels)), dim=1)",
                        "torch.cat((noise, 0 * self.label_embedding(labels)), dim=1)")]},
        "test_generator", "the generator ignores its labels"),
    "discriminator ignores its labels": (
        {"discriminator": [("self.label_embedding(labels)), dim=1)", "0 * self.label_embedding(labels)), dim=1)")]},
        "test_discriminator", "the discriminator ignores its labels"),
    # train_step
    "no optimizer_G.zero_grad()": (
        {"train_step": [("    optimizer_G.zero_grad()\n", "")]},
        "test_train_step", "call optimizer_G.zero_grad()"),
    "no optimizer_D.zero_grad()": (
        {"train_step": [("    optimizer_D.zero_grad()\n", "")]},
        "test_train_step", "call optimizer_D.zero_grad()"),
    "optimizer_G.step() missing": (
        {"train_step": [("    optimizer_G.step()\n", "")]},
        "test_train_step", "Expected optimizer_G.step() once, then optimizer_D.step() once"),
    "optimizer_D.step() missing": (
        {"train_step": [("    optimizer_D.step()\n", "")]},
        "test_train_step", "Expected optimizer_G.step() once, then optimizer_D.step() once"),
    "swapped real/fake targets for D": (
        {"train_step": [("(real_imgs, labels), valid)", "(real_imgs, labels), fake)"),
                        ("gen_labels), fake)", "gen_labels), valid)")]},
        "test_train_step", "real images have the target `valid`"),
    "G trained toward fake": (
        {"train_step": [("discriminator(gen_imgs, gen_labels), valid)", "discriminator(gen_imgs, gen_labels), fake)")]},
        "test_train_step", "The generator is trained towards `valid`"),
    "D trained on real images only": (
        {"train_step": [("d_loss = (real_loss + fake_loss) / 2", "d_loss = real_loss")]},
        "test_train_step", "never trained on generated images"),
    "real images scored with random labels": (
        {"train_step": [("discriminator(real_imgs, labels)", "discriminator(real_imgs, gen_labels)")]},
        "test_train_step", "pass `labels` with `real_imgs`"),
    "uniform noise in train_step (torch.rand)": (
        {"train_step": [("z = torch.randn(", "z = torch.rand(")]},
        "test_train_step", "not the uniform one (torch.rand)"),
    # generate_latent_points
    "uniform noise in generate_latent_points": (
        {"generate_latent_points": [("z = torch.randn(", "z = torch.rand(")]},
        "test_generate_latent_points", "torch.randn, not torch.rand"),
    "labels miss the last class": (
        {"generate_latent_points": [("torch.randint(0, n_classes,", "torch.randint(0, n_classes - 1,")]},
        "test_generate_latent_points", "expected all 0..9"),
    "latent points use opt instead of their arguments": (
        {"generate_latent_points": [("z = torch.randn(n_samples, latent_dim", "z = torch.randn(n_samples, opt.latent_dim")]},
        "test_generate_latent_points_hidden", "use the arguments, not opt"),
}


def apply(source, edits):
    """`source` with every (old, new) edit applied; fails if an edit no longer applies."""
    for old, new in edits:
        if old not in source:
            raise ValueError(f"variant edit no longer applies to the solution: {old!r}")
        source = source.replace(old, new)
    return source


def sources(edits_by_cell, solution_sources):
    """{grade_id: edited source} for load_cells(replace=...)."""
    return {grade_id: apply(solution_sources[grade_id], edits) for grade_id, edits in edits_by_cell.items()}
